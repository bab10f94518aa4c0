"""Data refused before any work (runner.data.check) and the classify evaluation subset."""

import os
import random
from pathlib import Path

import numpy as np
import pytest

from runner.config import config_from_dict
from runner.data import prepare_data
from runner.data.check import check_data
from runner.data.text import looks_like_text
from runner.errors import DataError, UserInputError

WORDS = "good bad great awful fine dull fun boring witty flat".split()


def class_folder(tmp_path: Path, per_class: int = 600) -> Path:
    """rt-polarity's layout: one file per class, one example per line, same length spread."""
    folder = tmp_path / "polarity"
    folder.mkdir()
    rng = random.Random(1)
    for name in ("rt.neg", "rt.pos"):
        lines = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 25))) for _ in range(per_class)
        ]
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def classify(path: Path, tmp_path: Path, seed: int = 0):
    data = {"path": str(path), "cache_dir": str(tmp_path / "cache"), "tokenizer": "char"}
    data |= {"max_length": 64, "max_tokens_per_batch": 512, "val_fraction": 0.5}
    return config_from_dict({"task": "classify", "seed": seed, "data": data})


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_limited_classify_evaluation_keeps_the_share_of_each_class(tmp_path, seed):
    data = prepare_data(classify(class_folder(tmp_path), tmp_path, seed))
    everything = data.val_batches(0, 0)
    assert len(everything) > 8
    labels = np.concatenate([b["labels"].numpy() for b in data.val_batches(0, 4)])
    assert len(labels) >= 30  # four batches of the token budget, not a handful of examples
    # 300 val examples per class: a stratified subset is 50% +- one example
    assert abs(labels.mean() - 0.5) <= 1 / len(labels) + 1e-9, labels.mean()
    assert len(data.val_batches(0, 4)) <= 4
    # the same subset every time it is asked for
    again = np.concatenate([b["labels"].numpy() for b in data.val_batches(0, 4)])
    assert np.array_equal(labels, again)


def test_stratified_order_keeps_class_shares_in_every_prefix():
    from runner.data.classify import stratified_order

    labels = np.array([0] * 90 + [1] * 30 + [2] * 30)
    order = stratified_order(labels, seed=5)
    assert sorted(order.tolist()) == list(range(150))
    for n in range(1, 151):
        counts = np.bincount(labels[order[:n]], minlength=3)
        assert np.all(np.abs(counts - n * np.array([0.6, 0.2, 0.2])) <= 1.0), (n, counts)
    assert not np.array_equal(order, stratified_order(labels, seed=6))


def lm(path) -> object:
    return config_from_dict({"data": {"path": None if path is None else str(path)}})


def test_a_binary_corpus_is_refused_naming_file_and_key(tmp_path):
    binary = tmp_path / "corpus.bin"
    binary.write_bytes(os.urandom(20000))
    with pytest.raises(
        DataError, match=r"^exp.yaml: .*corpus.bin is not a text file.*\(data.path\)$"
    ):
        check_data(lm(binary), "exp.yaml")
    # prepare_data refuses it too (hpo train and every other entry point)
    with pytest.raises(DataError, match="is not a text file"):
        prepare_data(lm(binary))


def test_a_missing_corpus_and_an_unreadable_one_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"^exp.yaml: .*nosuch.txt does not exist.*\(data.path\)$"):
        check_data(lm(tmp_path / "nosuch.txt"), "exp.yaml")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    (empty_dir / "x.npy").write_bytes(b"\x93NUMPY\x00\x01" + bytes(200))
    with pytest.raises(DataError, match=r"no text files found under .*\(data.path\)$"):
        check_data(lm(empty_dir), "exp.yaml")
    if os.geteuid() == 0:
        return  # root reads files whatever their mode; the permission branch cannot fail here
    locked = tmp_path / "locked.txt"
    locked.write_text("text\n")
    locked.chmod(0)
    with pytest.raises(DataError, match="not readable"):
        check_data(lm(locked), "exp.yaml")


def test_text_corpora_pass_utf8_latin1_and_the_stdlib(tmp_path):
    utf8 = tmp_path / "u.txt"
    utf8.write_text("naïve café — ünïcödé\n" * 1000, encoding="utf-8")
    latin1 = tmp_path / "l.txt"
    latin1.write_bytes("a film that is très bien, n'est-ce pas?\n".encode("latin-1") * 300)
    for path in (utf8, latin1, None):
        check_data(lm(path), "exp.yaml")
    # a multi-byte character cut by the 8 KiB sniff is still text
    assert looks_like_text(("x" * 8191 + "é").encode()[:8192])


def test_classify_needs_a_folder_of_two_classes_or_a_table(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "pos.txt").write_text("fine\n")
    config = config_from_dict({"task": "classify", "data": {"path": str(one)}})
    with pytest.raises(DataError, match=r"holds 1 file\(s\).*\(data.path\)$"):
        check_data(config, "exp.yaml")
    json_file = tmp_path / "r.json"
    json_file.write_text("{}")
    config = config_from_dict({"task": "classify", "data": {"path": str(json_file)}})
    with pytest.raises(DataError, match="neither a .csv/.tsv file nor a folder"):
        check_data(config, "exp.yaml")
    with pytest.raises(DataError, match=r"classify needs labelled data.*\(data.path\)$"):
        check_data(config_from_dict({"task": "classify"}), "exp.yaml")


def test_a_table_without_the_configured_columns_is_refused_before_reading_it(tmp_path):
    table = tmp_path / "r.csv"
    table.write_text("sentence,label\nfine,pos\nbad,neg\n")
    config = config_from_dict({"task": "classify", "data": {"path": str(table)}})
    with pytest.raises(
        DataError,
        match=r"no column 'text'; its header has 'sentence', 'label'.*\(data.text_column\)$",
    ):
        check_data(config, "exp.yaml")
    config = config_from_dict(
        {"task": "classify", "data": {"path": str(table), "text_column": "sentence"}}
    )
    check_data(config, "exp.yaml")


def test_the_config_knows_the_tokenizers_smallest_bpe_vocabulary():
    from runner.config import MIN_BPE_VOCAB_SIZE
    from runner.data.tokenizer import MIN_BPE_VOCAB_SIZE as TOKENIZERS

    assert MIN_BPE_VOCAB_SIZE == TOKENIZERS
    with pytest.raises(UserInputError, match=r"at least 261.*\(data.vocab_size\)$"):
        config_from_dict({"data": {"vocab_size": 100}})
    config_from_dict({"data": {"vocab_size": 100, "tokenizer": "char"}})
