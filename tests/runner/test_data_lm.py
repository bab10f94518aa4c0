"""Language-modelling data: packing, batches, cache, stats and bad input (runner.data.lm)."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from runner.config import TrialConfig, config_from_dict
from runner.data import prepare_data
from runner.data.tokenizer import TextTokenizer
from runner.errors import DataError

SHIPPED_DATA = Path(__file__).parents[2] / "data"  # the corpora the repository ships
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def write_corpus(folder: Path, paragraphs: int = 120, seed: int = 0) -> Path:
    """A single file of varied paragraphs, about 250 characters each."""
    rng = random.Random(seed)
    text = "\n\n".join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))) for _ in range(paragraphs)
    )
    path = folder / "corpus.txt"
    path.write_text(text)
    return path


def lm_config(path: Path | str | None, tmp_path: Path, seed: int = 0, **data) -> TrialConfig:
    settings = {"path": None if path is None else str(path), "cache_dir": str(tmp_path / "cache")}
    settings |= {"tokenizer": "char", "block_size": 16, "min_doc_chars": 1} | data
    return config_from_dict({"task": "lm", "seed": seed, "data": settings})


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path)


def test_blocks_are_exactly_block_size_with_no_padding(corpus, tmp_path):
    data = prepare_data(lm_config(corpus, tmp_path, block_size=24))
    batch = data.train_batch(0, 5)["input_ids"]
    assert batch.shape == (5, 24) and batch.dtype == torch.long
    assert data.tokenizer.pad_id not in data.train_blocks
    assert data.num_tokens(data.train_batch(0, 5)) == 5 * 24


def test_packing_puts_eos_after_each_document_and_drops_the_remainder(corpus, tmp_path):
    data = prepare_data(lm_config(corpus, tmp_path, block_size=24))
    stats = data.stats
    assert stats["train_blocks"] == stats["train_tokens"] // 24
    assert stats["val_blocks"] == stats["val_tokens"] // 24
    stream = np.asarray(data.train_blocks).ravel()
    docs = data.tokenizer.decode(stream.tolist()).split("<eos>")
    assert len(docs) - 1 == int((stream == data.tokenizer.eos_id).sum())
    assert docs[0] in corpus.read_text().split("\n\n")


def test_train_batch_is_a_pure_function_of_the_index(corpus, tmp_path):
    data = prepare_data(lm_config(corpus, tmp_path))
    first = [data.train_batch(i, 7)["input_ids"] for i in range(60)]
    again = prepare_data(lm_config(corpus, tmp_path))
    for i in (59, 3, 0, 41):  # out of order, on a fresh dataset: same batches
        assert torch.equal(again.train_batch(i, 7)["input_ids"], first[i])


def test_each_epoch_visits_every_block_once_in_a_new_order(corpus, tmp_path):
    data = prepare_data(lm_config(corpus, tmp_path))
    count = len(data.train_blocks)
    rows = torch.cat([data.train_batch(i, count)["input_ids"] for i in range(2)])
    blocks = torch.from_numpy(np.asarray(data.train_blocks, dtype=np.int64))
    epoch0, epoch1 = rows[:count], rows[count:]
    for epoch in (epoch0, epoch1):
        assert sorted(map(tuple, epoch.tolist())) == sorted(map(tuple, blocks.tolist()))
    assert not torch.equal(epoch0, epoch1)


def test_batches_straddling_an_epoch_boundary_continue_into_the_next_epoch(corpus, tmp_path):
    data = prepare_data(lm_config(corpus, tmp_path))
    count = len(data.train_blocks)
    size = 7 if count % 7 else 6  # so one batch holds the end of epoch 0 and the start of 1
    for index in range(count // size - 1, count // size + 2):
        positions = range(index * size, (index + 1) * size)
        one_by_one = torch.cat([data.train_batch(p, 1)["input_ids"] for p in positions])
        assert torch.equal(data.train_batch(index, size)["input_ids"], one_by_one)


def test_another_seed_gives_another_batch_order(corpus, tmp_path):
    a = prepare_data(lm_config(corpus, tmp_path, seed=0)).train_batch(0, 8)["input_ids"]
    b = prepare_data(lm_config(corpus, tmp_path, seed=1)).train_batch(0, 8)["input_ids"]
    assert not torch.equal(a, b)


def test_validation_batches_are_the_same_fixed_set_every_call(corpus, tmp_path):
    data = prepare_data(lm_config(corpus, tmp_path))
    first, second = data.val_batches(4, 0), data.val_batches(4, 0)
    assert len(first) == -(-len(data.val_blocks) // 4)
    assert all(
        torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, second, strict=True)
    )
    assert len(data.val_batches(4, 2)) == 2
    assert torch.equal(data.val_batches(4, 2)[1]["input_ids"], first[1]["input_ids"])


def test_second_prepare_loads_from_cache_without_tokenizing(corpus, tmp_path, monkeypatch):
    first = prepare_data(lm_config(corpus, tmp_path, tokenizer="bpe", vocab_size=300))
    assert first.stats["from_cache"] is False

    def must_not_train(*args, **kwargs):
        raise AssertionError("the tokenizer was trained again")

    monkeypatch.setattr(TextTokenizer, "train_bpe", must_not_train)
    monkeypatch.setattr(TextTokenizer, "encode_batch", must_not_train)
    second = prepare_data(lm_config(corpus, tmp_path, tokenizer="bpe", vocab_size=300))
    assert second.stats["from_cache"] is True
    assert isinstance(second.train_blocks, np.memmap)
    assert np.array_equal(second.train_blocks, first.train_blocks)
    assert second.tokenizer.to_json() == first.tokenizer.to_json()


def test_cache_entry_changes_with_vocab_size_but_not_block_size(corpus, tmp_path):
    prepare_data(lm_config(corpus, tmp_path, tokenizer="bpe", vocab_size=300))
    other_vocab = prepare_data(lm_config(corpus, tmp_path, tokenizer="bpe", vocab_size=320))
    other_block = prepare_data(
        lm_config(corpus, tmp_path, tokenizer="bpe", vocab_size=300, block_size=8)
    )
    assert other_vocab.stats["from_cache"] is False
    assert other_block.stats["from_cache"] is True and other_block.train_blocks.shape[1] == 8
    assert len([p for p in (tmp_path / "cache").iterdir() if not p.name.startswith(".")]) == 2


def test_cache_entry_changes_with_the_corpus_text(tmp_path):
    write_corpus(tmp_path, seed=0)
    prepare_data(lm_config(tmp_path / "corpus.txt", tmp_path))
    write_corpus(tmp_path, seed=1)
    assert prepare_data(lm_config(tmp_path / "corpus.txt", tmp_path)).stats["from_cache"] is False


def test_stats_hold_token_length_percentiles_and_cleaning_counts(tmp_path):
    path = tmp_path / "corpus.txt"
    paragraphs = [" ".join(WORDS[: 3 + i % 9]) for i in range(60)]
    path.write_text("\n\n".join([*paragraphs, "tiny", "x" * 500]))
    stats = prepare_data(lm_config(path, tmp_path, min_doc_chars=10, max_doc_chars=400)).stats
    assert stats["docs_read"] == 62 and stats["docs_too_short"] == 1 and stats["docs_too_long"] == 1
    assert stats["docs_duplicate"] == 60 - 9
    assert stats["docs_train"] + stats["docs_val"] == 9
    assert 0 < stats["doc_tokens_p50"] <= stats["doc_tokens_p90"] <= stats["doc_tokens_p95"]
    assert stats["train_tokens"] > stats["val_tokens"] > 0


def test_folder_corpus_makes_each_file_a_document(tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(5):
        write_corpus(tmp_path, paragraphs=4, seed=i).rename(folder / f"{i}.txt")
    stats = prepare_data(lm_config(folder, tmp_path)).stats
    assert stats["docs_read"] == 5 and stats["docs_train"] + stats["docs_val"] == 5


def test_default_corpus_is_the_standard_library(tmp_path):
    data = prepare_data(
        lm_config(None, tmp_path, tokenizer="bpe", vocab_size=512, max_chars=200_000)
    )
    assert data.stats["chars_read"] == 200_000
    text = data.tokenizer.decode(np.asarray(data.train_blocks).ravel().tolist())
    assert "\ndef " in text and "\nimport " in text


def test_pretrained_tokenizer_is_loaded_instead_of_trained(corpus, tmp_path, monkeypatch):
    saved = TextTokenizer.train_char(["abc", corpus.read_text()])
    saved.save_pretrained(tmp_path / "model")
    monkeypatch.setattr(TextTokenizer, "train_char", lambda *a: pytest.fail("trained a tokenizer"))
    data = prepare_data(
        config_from_dict(
            {
                "data": {"path": str(corpus), "cache_dir": str(tmp_path / "c"), "block_size": 16},
                "model": {"pretrained": str(tmp_path / "model")},
            }
        )
    )
    assert data.tokenizer.kind == "pretrained"
    assert data.tokenizer.vocab_size == saved.vocab_size
    text = "gamma delta"
    assert data.tokenizer.encode(text) == saved.encode(text)


def test_missing_path_is_an_error_naming_it(tmp_path):
    with pytest.raises(DataError, match=r"nowhere.txt does not exist.*\(data.path\)$"):
        prepare_data(lm_config(tmp_path / "nowhere.txt", tmp_path))


def test_corpus_empty_after_cleaning_is_an_error_with_the_counts(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("a\n\nb\n\nc")
    with pytest.raises(DataError, match=r"no documents left.*3 shorter than data.min_doc_chars=16"):
        prepare_data(lm_config(path, tmp_path, min_doc_chars=16))


def test_empty_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no text files"):
        prepare_data(lm_config(tmp_path / "empty", tmp_path))


def test_block_larger_than_a_split_is_an_error_with_its_token_count(corpus, tmp_path):
    with pytest.raises(DataError, match=r"block_size=4096 is larger than the val split.*smaller"):
        prepare_data(lm_config(corpus, tmp_path, block_size=4096))


def test_a_play_splits_by_paragraph(tmp_path):
    path = SHIPPED_DATA / "play" / "play.txt"  # Tiny Shakespeare's layout, generated
    data = prepare_data(lm_config(path, tmp_path, max_chars=100_000, block_size=64))
    assert data.stats["docs_train"] > 100 and data.stats["docs_val"] > 10
    assert data.tokenizer.vocab_size < 80
