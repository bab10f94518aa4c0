"""Document-aware packing (data.packing_strategy=documents): attention, positions and labels
stay within each document of a packed block (runner.data.lm, runner.loss)."""

import random

import numpy as np
import pytest
import torch

from runner.config import config_from_dict
from runner.data import prepare_data
from runner.data.lm import document_positions_and_labels
from runner.errors import DataError
from runner.loss import forward_loss
from runner.model import build_model

EOS = 2


def lm_config(corpus, tmp_path, **data):
    settings = {"path": str(corpus), "cache_dir": str(tmp_path / "cache"), "tokenizer": "char"}
    settings |= {"block_size": 16, "min_doc_chars": 1} | data
    model = {"n_layer": 2, "n_head": 2, "n_embd": 32}
    return config_from_dict({"task": "lm", "data": settings, "model": model})


@pytest.fixture
def corpus(tmp_path):
    """Short documents (a few words each), so that a 64-token block holds several."""
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog near old river banks".split()
    docs = [" ".join(rng.choice(words) for _ in range(rng.randint(2, 4))) for _ in range(600)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(docs))
    return path


@pytest.mark.parametrize("dtype", [np.int64, np.uint16])  # uint16: how the data cache keeps ids
def test_positions_restart_and_boundary_targets_are_ignored(dtype):
    block = np.array([[7, 8, EOS, 9, 9, 9, EOS, 5]], dtype=dtype)
    positions, labels = document_positions_and_labels(block, EOS)
    assert positions.tolist() == [[0, 1, 2, 0, 1, 2, 3, 0]]
    # a document's first token is never a target: it would be predicted from the previous one
    assert labels.tolist() == [[-100, 8, EOS, -100, 9, 9, EOS, -100]]


def _model_and_block(corpus, tmp_path, **data):
    config = lm_config(corpus, tmp_path, block_size=64, packing_strategy="documents", **data)
    dataset = prepare_data(config)
    torch.manual_seed(0)
    model = build_model(config, dataset.tokenizer.vocab_size, dataset.tokenizer.pad_id).eval()
    return dataset, model


def test_changing_one_document_leaves_the_others_logits_unchanged(corpus, tmp_path):
    dataset, model = _model_and_block(corpus, tmp_path)
    eos = dataset.tokenizer.eos_id
    # a block holding at least three documents: two whole ones after the first boundary
    block = next(b for b in np.asarray(dataset.train_blocks) if (b == eos).sum() >= 3)
    ends = np.flatnonzero(block == eos)
    first, second = slice(ends[0] + 1, ends[1] + 1), slice(ends[1] + 1, None)
    changed = block.copy()
    changed[first] = np.roll(changed[first][:-1], 1).tolist() + [eos]  # same length, new text
    assert not np.array_equal(changed, block)
    with torch.no_grad():
        logits = [
            forward_loss(model, dataset._batch(b[None]), "lm")[1][0] for b in (block, changed)
        ]
    unchanged = torch.ones(len(block), dtype=torch.bool)
    unchanged[first] = False
    assert (logits[0][first] - logits[1][first]).abs().max() > 1e-3  # the edit does reach it
    assert (logits[0][unchanged] - logits[1][unchanged]).abs().max() <= 1e-6
    assert (logits[0][second] - logits[1][second]).abs().max() <= 1e-6


def test_wrapped_packing_lets_a_document_see_the_one_before(corpus, tmp_path):
    dataset, model = _model_and_block(corpus, tmp_path)
    dataset.packing_strategy = "wrapped"  # the same blocks, without per-document positions
    eos = dataset.tokenizer.eos_id
    block = next(b for b in np.asarray(dataset.train_blocks) if (b == eos).sum() >= 2)
    ends = np.flatnonzero(block == eos)
    changed = block.copy()
    changed[: ends[0]] = np.roll(changed[: ends[0]], 1)
    with torch.no_grad():
        logits = [
            forward_loss(model, dataset._batch(b[None]), "lm")[1][0] for b in (block, changed)
        ]
    after = slice(ends[0] + 1, None)
    assert (logits[0][after] - logits[1][after]).abs().max() > 1e-4


def test_bos_starts_every_document(corpus, tmp_path):
    dataset, _ = _model_and_block(corpus, tmp_path, add_bos_token=True)
    stream = np.asarray(dataset.train_blocks).ravel()
    bos, eos = dataset.tokenizer.cls_id, dataset.tokenizer.eos_id
    assert stream[0] == bos
    after_eos = stream[1:][stream[:-1] == eos]
    assert (after_eos == bos).all()
    assert 0 <= (stream == bos).sum() - (stream == eos).sum() <= 1  # the last may be cut off
    batch = dataset.train_batch(0, 4)
    # the bos is a start (position 0, no target); the token after it is a target at position 1
    at_bos = batch["input_ids"] == bos
    assert (batch["position_ids"][at_bos] == 0).all() and (batch["labels"][at_bos] == -100).all()
    after_bos = torch.zeros_like(at_bos)
    after_bos[:, 1:] = at_bos[:, :-1]
    assert after_bos.any() and (batch["labels"][after_bos] != -100).all()


def test_bos_that_is_the_eos_is_refused(corpus, tmp_path, monkeypatch):
    from runner.data import lm

    config = lm_config(corpus, tmp_path, add_bos_token=True)
    tokenizer = prepare_data(lm_config(corpus, tmp_path)).tokenizer
    tokenizer.cls_id = tokenizer.eos_id  # as GPT-2's pretrained tokenizer: one <|endoftext|>
    with pytest.raises(DataError, match="add_bos_token"):
        lm._bos_id(tokenizer, config)


def test_loss_ignores_the_boundary_targets(corpus, tmp_path):
    dataset, model = _model_and_block(corpus, tmp_path)
    batch = dataset.train_batch(0, 4)
    loss, logits = forward_loss(model, batch, "lm")
    targets = batch["labels"][:, 1:]
    keep = targets != -100
    expected = torch.nn.functional.cross_entropy(logits[:, :-1][keep], targets[keep])
    assert torch.allclose(loss, expected, atol=1e-6)
    assert keep.sum() < targets.numel()


def test_unigram_baseline_scores_the_positions_the_loss_scores():
    from runner.data.lm import unigram_val_loss

    train = np.array([[5, 5, 6, EOS]])
    val = np.array([[5, EOS, 7, 5]])  # with documents packing, 7 (a document start) is no target
    wrapped = unigram_val_loss(train, val, 8)
    documents = unigram_val_loss(train, val, 8, EOS)
    counts = np.bincount(train.ravel(), minlength=8) + 1.0
    log_probs = np.log(counts / counts.sum())
    assert wrapped == pytest.approx(-log_probs[[EOS, 7, 5]].mean())
    assert documents == pytest.approx(-log_probs[[EOS, 5]].mean())
