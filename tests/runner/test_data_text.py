"""Reading, cleaning and splitting text (runner.data.text)."""

from pathlib import Path

import pytest

from runner.data.text import (
    class_name_of_file,
    clean_documents,
    length_percentiles,
    read_documents,
    read_labelled_examples,
    read_text,
    split_documents,
    stdlib_source_files,
)
from runner.errors import DataError

DOCS = [f"document number {i} " + "word " * (i % 7 + 3) for i in range(40)]


def test_cleaning_removes_control_characters_but_keeps_newlines_and_tabs():
    kept, counts = clean_documents(["a\x00b\x07c\x1b[0m\n\td\x7fe\x85f"], 1, 100)
    assert kept == ["abc[0m\n\tdef"]
    assert counts["control_chars_removed"] == 5


def test_cleaning_drops_documents_outside_the_length_bounds():
    kept, counts = clean_documents(["tiny", "just right", "x" * 50], 5, 20)
    assert kept == ["just right"]
    assert (counts["docs_too_short"], counts["docs_too_long"]) == (1, 1)


def test_cleaning_drops_exact_duplicates_keeping_the_first():
    kept, counts = clean_documents(["one doc", "two doc", "one doc", "one doc "], 1, 100)
    assert kept == ["one doc", "two doc", "one doc "]
    assert counts["docs_duplicate"] == 1
    assert counts["docs_read"] == 4 and counts["docs_kept"] == 3


def test_split_is_the_same_for_the_same_seed():
    assert split_documents(DOCS, 0.2, seed=3) == split_documents(DOCS, 0.2, seed=3)


def test_split_differs_for_another_seed():
    assert split_documents(DOCS, 0.2, seed=3)[1] != split_documents(DOCS, 0.2, seed=4)[1]


def test_split_gives_validation_about_its_fraction_of_characters():
    train, val = split_documents(DOCS, 0.2, seed=0)
    total = sum(map(len, DOCS))
    assert 0.2 <= sum(map(len, val)) / total < 0.2 + max(map(len, DOCS)) / total
    assert sorted(train + val) == sorted(DOCS)


def test_split_keeps_at_least_one_document_on_each_side():
    train, val = split_documents(["a" * 10, "b" * 1000], 0.99, seed=0)
    assert len(train) == 1 and len(val) == 1
    train, val = split_documents(["a" * 1000, "b" * 10], 0.001, seed=1)
    assert len(train) == 1 and len(val) == 1


def test_split_of_a_single_document_is_an_error_suggesting_blank_lines():
    with pytest.raises(DataError, match="blank lines"):
        split_documents(["only one"], 0.1, seed=0)


def test_single_file_documents_are_its_blank_line_separated_paragraphs(tmp_path: Path):
    path = tmp_path / "corpus.txt"
    path.write_text("First para\nline two\n\n\n  \nSecond para\n\n    indented third\n")
    assert read_documents(str(path), 0) == [
        "First para\nline two",
        "Second para",
        "    indented third\n",
    ]


def test_folder_documents_are_its_text_files_sorted_recursively(tmp_path: Path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.txt").write_text("second")
    (tmp_path / "a.md").write_text("first\n\nstill first")
    (tmp_path / "c.bin").write_bytes(b"\x00\x01binary")
    (tmp_path / ".hidden").write_text("hidden")
    assert read_documents(str(tmp_path), 0) == ["first\n\nstill first", "second"]


def test_max_chars_caps_the_characters_read(tmp_path: Path):
    for name in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / name).write_text(name[0] * 10)
    assert read_documents(str(tmp_path), 15) == ["a" * 10, "b" * 5]


def test_default_corpus_is_the_stdlib_source_without_tests():
    files = stdlib_source_files()
    assert files == sorted(files) and all(f.suffix == ".py" for f in files)
    assert not any({"test", "tests", "idlelib", "site-packages"} & set(f.parts) for f in files)
    docs = read_documents(None, 50_000)
    assert sum(map(len, docs)) == 50_000
    assert docs[0] == files[0].read_text(encoding="utf-8")


def test_read_text_falls_back_to_latin1_for_invalid_utf8(tmp_path: Path):
    path = tmp_path / "old.txt"
    path.write_bytes("caf\xe9 cr\xe8me\r\n".encode("latin-1"))
    assert read_text(path) == "café crème\n"


def test_class_of_a_file_is_its_extension_or_its_stem_for_txt():
    assert class_name_of_file(Path("rt-polarity.pos")) == "pos"
    assert class_name_of_file(Path("positive.txt")) == "positive"
    assert class_name_of_file(Path("negative")) == "negative"


def test_csv_examples_are_read_by_column_with_quoted_commas(tmp_path: Path):
    path = tmp_path / "reviews.csv"
    path.write_text('id,review,stars\n1,"good, really",5\n2,,1\n3,bad,1\n')
    texts, labels, dropped = read_labelled_examples(path, "review", "stars")
    assert (texts, labels, dropped) == (["good, really", "bad"], ["5", "1"], 1)


def test_tsv_examples_are_read_by_tabs_without_quoting(tmp_path: Path):
    path = tmp_path / "reviews.tsv"
    path.write_text('text\tlabel\n"quoted" start\tpos\nplain\tneg\n')
    texts, labels, _ = read_labelled_examples(path, "text", "label")
    assert texts == ['"quoted" start', "plain"] and labels == ["pos", "neg"]


def test_missing_column_error_names_the_columns_the_table_has(tmp_path: Path):
    path = tmp_path / "reviews.csv"
    path.write_text("review,stars\ngood,5\n")
    with pytest.raises(DataError, match=r"no column 'text'.*'review', 'stars'.*data.text_column"):
        read_labelled_examples(path, "text", "stars")


def test_folder_examples_are_lines_of_one_file_per_class(tmp_path: Path):
    (tmp_path / "data.pos").write_bytes(b"great film\n\nfun\n")
    (tmp_path / "data.neg").write_bytes(b"dull \xe9t\xe9 film\n")
    texts, labels, dropped = read_labelled_examples(tmp_path, "text", "label")
    assert texts == ["dull été film", "great film", "fun"]
    assert labels == ["neg", "pos", "pos"] and dropped == 1


def test_length_percentiles_are_named_p50_p90_p95():
    assert length_percentiles(list(range(1, 101)), "doc_tokens") == {
        "doc_tokens_p50": 50.5,
        "doc_tokens_p90": 90.1,
        "doc_tokens_p95": 95.05,
    }
