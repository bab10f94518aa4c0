"""The data.clean pipeline: each step's counts, near-duplicate thresholds, cache key, bad config."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runner.config import CleanConfig, config_from_dict, load_config, save_config
from runner.data import prepare_data
from runner.data.clean import clean_texts, html_to_text, shingles
from runner.errors import ConfigError, DataError

REPO = Path(__file__).parents[2]


def test_html_becomes_visible_text_with_entities_and_without_scripts():
    page = (
        "<html><head><title>t</title><style>p {color: red}</style></head><body>"
        "<p>Fish &amp; chips</p><script>alert('x')</script><ul><li>one</li><li>two</li></ul>"
        "</body></html>"
    )
    assert html_to_text(page) == "Fish & chips\none\ntwo"
    kept, rows, report = clean_texts([page, "plain text stays"], CleanConfig(html=True))
    assert kept == ["Fish & chips\none\ntwo", "plain text stays"] and rows == [0, 1]
    assert report["html_docs_changed"] == 1
    assert report["html_chars_removed"] == len(page) - len(kept[0])
    assert report["docs_in"] == report["docs_out"] == 2


def test_unicode_normalization_counts_changes_and_exposes_duplicates():
    composed, decomposed = "caf\u00e9 au lait", "cafe\u0301 au lait"
    docs = [composed, decomposed, "\ufb01sh \uff21", "plain"]
    kept, rows, report = clean_texts(docs, CleanConfig(unicode_normalization="NFKC", dedup="exact"))
    assert kept == [composed, "fish A", "plain"] and rows == [0, 2, 3]
    assert report["unicode_docs_changed"] == 2  # the decomposed é and the ligature/full-width
    assert report["removed_exact_duplicate"] == 1
    # without normalization the two spellings of café are different texts
    assert clean_texts(docs, CleanConfig(dedup="exact"))[2]["removed_exact_duplicate"] == 0


def test_length_and_non_alpha_filters_count_what_they_remove():
    docs = [
        "tiny",
        "a sentence of fine length",
        "x" * 60,
        "1234 5678 90!! ## ok",
        "good words here",
    ]
    clean = CleanConfig(min_chars=5, max_chars=50, max_non_alpha_fraction=0.5)
    kept, rows, report = clean_texts(docs, clean)
    assert kept == ["a sentence of fine length", "good words here"] and rows == [1, 4]
    assert report == {
        "docs_in": 5,
        "removed_too_short": 1,
        "removed_too_long": 1,
        "removed_non_alpha": 1,
        "docs_out": 2,
    }


def test_exact_dedup_keeps_the_first_occurrence():
    docs = ["b text", "a text", "b text", "c text", "a text", "b text"]
    kept, rows, report = clean_texts(docs, CleanConfig(dedup="exact"))
    assert kept == ["b text", "a text", "c text"] and rows == [0, 1, 3]
    assert report["removed_exact_duplicate"] == 3 and "removed_near_duplicate" not in report


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


BASE = (
    "the quick brown fox jumps over the lazy dog while the farmer watches from the old "
    "wooden porch and drinks a cup of strong black coffee before the long day of work begins"
)
NEAR = BASE.replace("strong black", "strong dark")  # one word changed
HALF = BASE[: len(BASE) // 2] + " then something else entirely happens in a different town"


def test_near_duplicates_follow_the_threshold():
    pytest.importorskip("datasketch")
    assert 0.85 < jaccard(BASE, NEAR) < 0.95 and 0.3 < jaccard(BASE, HALF) < 0.6
    other = "an unrelated sentence about sailing boats on a windy lake in the north"
    docs = [BASE, NEAR, HALF, other]
    for threshold, removed in ((0.7, [1]), (0.3, [1, 2]), (0.99, [])):
        kept, rows, report = clean_texts(
            docs, CleanConfig(dedup="near", near_duplicate_threshold=threshold)
        )
        assert rows == [i for i in range(4) if i not in removed], threshold
        assert report["removed_near_duplicate"] == len(removed)
        assert report["removed_exact_duplicate"] == 0
    # exact copies are counted as exact, not near, and the result is the same on a rerun
    clean = CleanConfig(dedup="near", near_duplicate_threshold=0.8)
    twice = clean_texts([BASE, BASE, NEAR], clean)
    assert twice == clean_texts([BASE, BASE, NEAR], clean)
    assert twice[2]["removed_exact_duplicate"] == 1 and twice[2]["removed_near_duplicate"] == 1


def test_language_filter_keeps_the_language_asked_for():
    pytest.importorskip("langdetect")
    docs = [
        "This is a plain English sentence about the weather and the garden today.",
        "Ceci est une phrase française sur le temps qu'il fait dans le jardin.",
        "Dies ist ein deutscher Satz über das Wetter und den Garten heute.",
        "Another English sentence describing a walk along the river in spring.",
        "12345 67890",
    ]
    kept, rows, report = clean_texts(docs, CleanConfig(language="en"))
    assert rows == [0, 3]
    assert report["removed_language"] == 3


def write_paragraphs(path: Path) -> Path:
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    paragraphs = [" ".join(words[i % 10 :] + words[: i % 10]) + f" {i}" for i in range(30)]
    paragraphs += paragraphs[:5] + ["<b>" + paragraphs[6] + "</b>"]
    path.write_text("\n\n".join(paragraphs))
    return path


def lm_config(path: Path, tmp_path: Path, **clean):
    data = {"path": str(path), "cache_dir": str(tmp_path / "cache"), "tokenizer": "char"}
    data |= {"block_size": 16, "min_doc_chars": 1, "clean": clean}
    return config_from_dict({"task": "lm", "data": data})


def test_lm_cleaning_is_in_the_data_record_and_in_the_cache_key(tmp_path):
    corpus = write_paragraphs(tmp_path / "corpus.txt")
    plain = prepare_data(lm_config(corpus, tmp_path))
    assert "cleaning" not in plain.stats and plain.stats["docs_duplicate"] == 5
    html = prepare_data(lm_config(corpus, tmp_path, html=True, dedup="exact"))
    assert not html.stats["from_cache"]  # a changed cleaning config prepares again
    assert html.stats["cleaning"] == {
        "docs_in": 36,
        "html_docs_changed": 1,
        "html_chars_removed": 7,
        "removed_exact_duplicate": 6,  # 5 copies, and the paragraph the <b> tag hid
        "docs_out": 30,
    }
    assert html.stats["docs_read"] == 36 and html.stats["docs_kept"] == 30
    again = prepare_data(lm_config(corpus, tmp_path, html=True, dedup="exact"))
    assert again.stats["from_cache"] and again.stats["cleaning"] == html.stats["cleaning"]
    other = prepare_data(lm_config(corpus, tmp_path, html=True))
    assert not other.stats["from_cache"] and other.stats["cleaning"]["docs_out"] == 36


def test_cleaning_that_leaves_nothing_says_what_removed_it(tmp_path):
    corpus = write_paragraphs(tmp_path / "corpus.txt")
    with pytest.raises(DataError, match=r"no documents left.*36 removed by data.clean.*too_short"):
        prepare_data(lm_config(corpus, tmp_path, min_chars=10_000))
    folder = tmp_path / "classes"
    folder.mkdir()
    (folder / "pos.txt").write_text("a long enough positive example\nanother positive one\n")
    (folder / "neg.txt").write_text("bad\nsad\n")
    data = {"path": str(folder), "cache_dir": str(tmp_path / "cache"), "clean": {"min_chars": 5}}
    with pytest.raises(DataError, match=r"1 class\(es\) \['pos'\] left after data.clean"):
        prepare_data(config_from_dict({"task": "classify", "data": data}))


def test_a_threshold_without_near_dedup_changes_nothing():
    assert not CleanConfig(near_duplicate_threshold=0.5).enabled
    assert CleanConfig(max_non_alpha_fraction=0.9).enabled


def test_classify_cleaning_keeps_labels_with_their_texts(tmp_path):
    folder = tmp_path / "classes"
    folder.mkdir()
    (folder / "pos.txt").write_text("good film\ngreat plot\ngood film\nlovely cast\nfine acting\n")
    (folder / "neg.txt").write_text(
        "bad film\ndull plot\nbad film\nweak cast\n<i>poor</i> acting\n"
    )
    data = {"path": str(folder), "cache_dir": str(tmp_path / "cache"), "tokenizer": "char"}
    data |= {"val_fraction": 0.25, "clean": {"html": True, "dedup": "exact"}}
    prepared = prepare_data(config_from_dict({"task": "classify", "data": data}))
    assert prepared.stats["cleaning"]["removed_exact_duplicate"] == 2
    assert prepared.stats["examples_read"] == 10
    assert prepared.stats["train_examples"] + prepared.stats["val_examples"] == 8
    assert prepared.label_names == ["neg", "pos"]


@pytest.mark.parametrize(
    ("clean", "message"),
    [
        ({"max_non_alpha_fraction": 1.5}, r"must be in \[0, 1\], got 1.5 \(data.clean.max_non"),
        ({"near_duplicate_threshold": 0}, r"\(data.clean.near_duplicate_threshold\)"),
        ({"min_chars": 10, "max_chars": 5}, r"\(data.clean.max_chars\)"),
        ({"dedup": "fuzzy"}, r"expected none, exact or near, got 'fuzzy' \(data.clean.dedup\)"),
        ({"unicode_normalization": "nfkc"}, r"\(data.clean.unicode_normalization\)"),
        ({"htm": True}, r"unknown config key 'data.clean.htm' \(did you mean 'data.clean.html'"),
    ],
)
def test_bad_cleaning_config_is_refused(clean, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"data": {"clean": clean}})


def test_cleaning_settings_are_dotted_keys_and_survive_the_saved_config(tmp_path):
    overrides = ["data.clean.dedup=exact", "data.clean.unicode_normalization=NFC"]
    config = config_from_dict({}, overrides)
    assert config.data.clean == CleanConfig(dedup="exact", unicode_normalization="NFC")
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_unknown_language_is_refused():
    pytest.importorskip("langdetect")
    with pytest.raises(ConfigError, match=r"unknown language 'english'.*\(data.clean.language\)"):
        config_from_dict({"data": {"clean": {"language": "english"}}})


def test_missing_optional_packages_are_named_with_the_extra(tmp_path):
    # A module set to None in sys.modules cannot be imported: the packages look uninstalled.
    site = tmp_path / "absent"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\nsys.modules['langdetect'] = sys.modules['datasketch'] = None\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    lines = []
    for clean in ("{language: en}", "{dedup: near}"):
        (tmp_path / "x.yaml").write_text(f"data:\n  clean: {clean}\n")
        proc = subprocess.run(
            [sys.executable, "-m", "hpo", "train", "--config", "x.yaml"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2, proc.stderr
        lines += proc.stderr.strip().splitlines()
    assert lines == [
        "hpo: error: x.yaml: language: 'en' needs the clean extra (langdetect): "
        "pip install 'hpo[clean]' (data.clean.language)",
        "hpo: error: x.yaml: dedup: near needs the clean extra (datasketch): "
        "pip install 'hpo[clean]' (data.clean.dedup)",
    ]
    assert not (tmp_path / "runs").exists(), "nothing is created before the check"
