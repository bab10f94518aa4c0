"""Classification data: loading, split, length batching and bad input (runner.data.classify)."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from runner.config import TrialConfig, config_from_dict
from runner.data import prepare_data
from runner.data.classify import length_batches, split_examples
from runner.data.tokenizer import TextTokenizer
from runner.errors import DataError

SHIPPED_DATA = Path(__file__).parents[2] / "data"  # the corpora the repository ships
WORDS = "good bad great awful fine dull fun boring witty flat".split()


def reviews(count: int = 200, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label) pairs of 1 to 30 words, three labels."""
    rng = random.Random(seed)
    return [
        (" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 30))), rng.choice("abc"))
        for _ in range(count)
    ]


def write_csv(path: Path, rows: list[tuple[str, str]], delimiter: str = ",") -> Path:
    lines = [f"text{delimiter}label"] + [f"{text}{delimiter}{label}" for text, label in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def classify_config(path: Path | None, tmp_path: Path, seed: int = 0, **data) -> TrialConfig:
    settings = {"path": None if path is None else str(path), "cache_dir": str(tmp_path / "cache")}
    settings |= {"tokenizer": "char", "max_length": 64, "max_tokens_per_batch": 256} | data
    return config_from_dict({"task": "classify", "seed": seed, "data": settings})


@pytest.fixture
def csv_path(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "reviews.csv", reviews())


def test_csv_examples_are_encoded_as_cls_tokens_sep_with_sorted_labels(csv_path, tmp_path):
    data = prepare_data(
        classify_config(csv_path, tmp_path, max_length=256, max_tokens_per_batch=2048)
    )
    assert data.label_names == ["a", "b", "c"]
    batch = data.val_batches(0, 1)[0]
    row, length = batch["input_ids"][0], int(batch["attention_mask"][0].sum())
    assert row[0] == data.tokenizer.cls_id and row[length - 1] == data.tokenizer.sep_id
    text = data.tokenizer.decode(row[1 : length - 1].tolist())
    assert (text, data.label_names[int(batch["labels"][0])]) in reviews()
    assert data.stats["train_examples"] + data.stats["val_examples"] == 200


def test_tsv_file_is_read_by_its_extension(tmp_path):
    path = write_csv(tmp_path / "reviews.tsv", reviews(), delimiter="\t")
    data = prepare_data(classify_config(path, tmp_path))
    assert data.stats["examples_read"] == 200 and data.label_names == ["a", "b", "c"]


def test_folder_of_one_file_per_class_names_classes_by_extension(tmp_path):
    folder = tmp_path / "polarity"
    folder.mkdir()
    for label in ("pos", "neg"):
        lines = [text for text, _ in reviews(50, seed=len(label) + ord(label[0]))]
        (folder / f"reviews.{label}").write_text("\n".join(lines) + "\n")
    data = prepare_data(classify_config(folder, tmp_path))
    assert data.label_names == ["neg", "pos"]
    assert data.stats["examples_read"] == 100 and data.stats["num_labels"] == 2


def test_numeric_labels_sort_by_value(tmp_path):
    rows = [(text, str(i % 11)) for i, (text, _) in enumerate(reviews(110))]
    data = prepare_data(classify_config(write_csv(tmp_path / "n.csv", rows), tmp_path))
    assert data.label_names == [str(i) for i in range(11)]


def test_split_is_stratified_and_deterministic_by_seed():
    labels = [0] * 50 + [1] * 30 + [2] * 20
    train, val = split_examples(labels, 0.2, seed=1)
    assert sorted(train + val) == list(range(100))
    assert [sum(labels[i] == c for i in val) for c in range(3)] == [10, 6, 4]
    assert split_examples(labels, 0.2, seed=1) == (train, val)
    assert split_examples(labels, 0.2, seed=2)[1] != val


def test_examples_are_truncated_to_max_length_keeping_sep(tmp_path):
    path = write_csv(tmp_path / "long.csv", [("x" * 100, "a"), ("y" * 100, "b")] * 10)
    data = prepare_data(classify_config(path, tmp_path, max_length=32))
    batch = data.train_batch(0, 0)
    assert batch["input_ids"].shape[1] == 32
    assert (batch["input_ids"][:, -1] == data.tokenizer.sep_id).all()
    assert data.stats["examples_truncated"] == 20 and data.stats["example_tokens_p50"] == 102


def test_length_batches_respect_the_token_budget():
    lengths = np.array([3, 10, 4, 10, 7, 2, 9, 5, 5, 1])
    batches = length_batches(lengths, 20)
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    assert all(len(b) * lengths[b].max() <= 20 for b in batches)
    assert [lengths[b].tolist() for b in batches] == [[1, 2, 3, 4], [5, 5], [7, 9], [10, 10]]


def test_train_batches_pad_only_to_their_longest_example_within_budget(csv_path, tmp_path):
    data = prepare_data(classify_config(csv_path, tmp_path))
    seen = 0
    for index in range(data.batches_per_epoch):
        batch = data.train_batch(index, batch_size=999)  # ignored: the budget decides
        mask = batch["attention_mask"]
        assert batch["input_ids"].numel() <= 256
        assert mask.sum(1).max() == mask.shape[1]  # the longest example has no padding
        assert (batch["input_ids"][mask == 0] == data.tokenizer.pad_id).all()
        assert data.num_tokens(batch) == int(mask.sum())
        seen += len(batch["labels"])
    assert seen == data.stats["train_examples"]


def test_train_batch_is_a_pure_function_of_the_index_across_epochs(csv_path, tmp_path):
    data = prepare_data(classify_config(csv_path, tmp_path))
    per_epoch = data.batches_per_epoch
    indices = [0, 1, per_epoch - 1, per_epoch, 2 * per_epoch + 3]
    first = {i: data.train_batch(i, 0) for i in indices}
    fresh = prepare_data(classify_config(csv_path, tmp_path))
    for i in reversed(indices):
        assert all(torch.equal(fresh.train_batch(i, 0)[k], v) for k, v in first[i].items())
    order0 = [data.train_batch(i, 0)["labels"].tolist() for i in range(per_epoch)]
    order1 = [data.train_batch(i, 0)["labels"].tolist() for i in range(per_epoch, 2 * per_epoch)]
    assert order0 != order1


def test_validation_batches_are_the_same_fixed_set_every_call(csv_path, tmp_path):
    data = prepare_data(classify_config(csv_path, tmp_path))
    first, second = data.val_batches(8, 0), data.val_batches(8, 0)
    assert sum(len(b["labels"]) for b in first) == data.stats["val_examples"]
    for a, b in zip(first, second, strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)
    # a limited evaluation is a fixed (stratified, tests/runner/test_data_checks.py) subset
    limited = data.val_batches(8, 2)
    assert len(limited) == 2
    for a, b in zip(limited, data.val_batches(8, 2), strict=True):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_second_prepare_loads_from_cache_without_tokenizing(csv_path, tmp_path, monkeypatch):
    first = prepare_data(classify_config(csv_path, tmp_path, tokenizer="bpe", vocab_size=300))
    monkeypatch.setattr(TextTokenizer, "encode_batch", lambda *a: pytest.fail("tokenized again"))
    second = prepare_data(classify_config(csv_path, tmp_path, tokenizer="bpe", vocab_size=300))
    assert (first.stats["from_cache"], second.stats["from_cache"]) == (False, True)
    assert np.array_equal(second.train.tokens, first.train.tokens)
    assert second.label_names == first.label_names


def test_classify_without_a_path_is_an_error(tmp_path):
    with pytest.raises(DataError, match="classify needs labelled data"):
        prepare_data(classify_config(None, tmp_path))


def test_missing_label_column_is_an_error_naming_the_columns(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("sentence,label\nfine,a\n")
    with pytest.raises(DataError, match=r"no column 'text'.*'sentence', 'label'"):
        prepare_data(classify_config(path, tmp_path))


def test_a_single_class_is_an_error(tmp_path):
    path = write_csv(tmp_path / "one.csv", [(text, "a") for text, _ in reviews(20)])
    with pytest.raises(DataError, match=r"1 class\(es\) \['a'\].*at least 2"):
        prepare_data(classify_config(path, tmp_path))


def test_unknown_table_extension_is_an_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{}")
    with pytest.raises(DataError, match=r"neither a .csv/.tsv file nor a folder"):
        prepare_data(classify_config(path, tmp_path))


def test_an_rt_polarity_style_folder_loads_both_classes(tmp_path):
    folder = SHIPPED_DATA / "sentiment"  # sentiment.pos / .neg, rt-polarity's layout
    data = prepare_data(classify_config(folder, tmp_path, max_tokens_per_batch=4096))
    assert data.label_names == ["neg", "pos"]
    assert data.stats["examples_read"] == 4000 and data.stats["examples_dropped_empty"] == 0
    assert data.stats["val_examples"] == 2 * round(0.1 * 2000)
