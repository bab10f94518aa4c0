"""Causal language modelling: a text corpus, cleaned, split, tokenized and packed into blocks.

Each document's tokens are followed by eos and the documents are concatenated into one
stream per split; the stream is cut into non-overlapping blocks of exactly data.block_size
tokens and the remainder dropped, so no batch holds padding. The labels are the inputs
(the loop shifts them). The cache holds the token streams, not the blocks: the blocks are
a zero-copy view, so trials that differ only in block_size share one cache entry.

Example:
    >>> data = prepare_lm(config)
    >>> data.train_batch(0, 8)["input_ids"].shape  # (8, config.data.block_size)
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from runner.config import TrialConfig
from runner.data.cache import (
    CacheEntry,
    cache_key,
    cache_root,
    load_entry,
    store_entry,
    token_dtype,
)
from runner.data.check import check_data
from runner.data.text import (
    clean_documents,
    fingerprint,
    length_percentiles,
    read_documents,
    split_documents,
)
from runner.data.tokenizer import TextTokenizer
from runner.errors import DataError


class LMDataset:
    """Packed blocks of a train and a validation token stream (see the module docstring)."""

    label_names: list[str]

    def __init__(
        self,
        train_tokens: np.ndarray,
        val_tokens: np.ndarray,
        block_size: int,
        tokenizer: TextTokenizer,
        stats: dict[str, float | int | bool],
        seed: int,
    ) -> None:
        self.tokenizer = tokenizer
        self.label_names = []
        self.block_size = block_size
        self.seed = seed
        self.train_blocks = _blocks(train_tokens, block_size)
        self.val_blocks = _blocks(val_tokens, block_size)
        self.stats = {
            **stats,
            "block_size": block_size,
            "train_blocks": len(self.train_blocks),
            "val_blocks": len(self.val_blocks),
            "unigram_val_loss": unigram_val_loss(
                self.train_blocks, self.val_blocks, tokenizer.vocab_size
            ),
        }
        self._permutations: dict[int, np.ndarray] = {}

    def train_batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        """Micro-batch `index` (from 0): a pure function of (seed, index, batch_size).

        Batches walk through the train blocks in a fresh permutation each epoch; epoch e's
        permutation is drawn from (seed, e), and a batch may straddle two epochs.
        """
        count = len(self.train_blocks)
        positions = np.arange(index * batch_size, (index + 1) * batch_size)
        rows = np.empty(batch_size, dtype=np.int64)
        for epoch in np.unique(positions // count):
            in_epoch = positions // count == epoch
            rows[in_epoch] = self._permutation(int(epoch))[positions[in_epoch] % count]
        return {"input_ids": _as_long(self.train_blocks[rows])}

    def val_batches(self, batch_size: int, max_batches: int) -> list[dict[str, torch.Tensor]]:
        """The fixed validation set: val blocks in order, `batch_size` per batch (0: all)."""
        starts = range(0, len(self.val_blocks), batch_size)
        if max_batches > 0:
            starts = starts[:max_batches]
        return [{"input_ids": _as_long(self.val_blocks[s : s + batch_size])} for s in starts]

    def num_tokens(self, batch: Mapping[str, torch.Tensor]) -> int:
        """Tokens in a batch (lm batches hold no padding)."""
        return batch["input_ids"].numel()

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            self._permutations = {}  # batches move forward: only the current epoch is needed
            rng = np.random.default_rng((self.seed, epoch))
            self._permutations[epoch] = rng.permutation(len(self.train_blocks))
        return self._permutations[epoch]


def prepare_lm(config: TrialConfig) -> LMDataset:
    """Read, clean, split, tokenize and pack the corpus of `config.data`, or load it from cache."""
    started = time.perf_counter()
    data = config.data
    check_data(config, f"experiment '{config.name}'")
    pretrained = (
        TextTokenizer.from_pretrained(config.model.pretrained) if config.model.pretrained else None
    )
    root = cache_root(data.cache_dir)
    docs = read_documents(data.path, data.max_chars)
    key = cache_key(
        {
            "task": "lm",
            "source": fingerprint(docs),
            "tokenizer": pretrained.fingerprint() if pretrained else data.tokenizer,
            "vocab_size": data.vocab_size if not pretrained and data.tokenizer == "bpe" else None,
            "val_fraction": data.val_fraction,
            "seed": config.seed,
            "min_doc_chars": data.min_doc_chars,
            "max_doc_chars": data.max_doc_chars,
            "max_chars": data.max_chars,
        }
    )
    entry = load_entry(root, key)
    from_cache = entry is not None
    if entry is None:
        entry = store_entry(root, key, *_tokenize_corpus(docs, config, pretrained))
    stats = json.loads(entry.texts["stats"])
    stats.update(from_cache=from_cache, prepare_seconds=round(time.perf_counter() - started, 3))
    return _dataset_from_entry(entry, config, stats)


def _tokenize_corpus(
    docs: Sequence[str], config: TrialConfig, pretrained: TextTokenizer | None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    data = config.data
    where = data.path or "the Python standard library"
    kept, stats = clean_documents(docs, data.min_doc_chars, data.max_doc_chars)
    if not kept:
        raise DataError(
            f"data.path: {where} has no documents left after cleaning ({stats['docs_read']} read: "
            f"{stats['docs_too_short']} shorter than data.min_doc_chars={data.min_doc_chars}, "
            f"{stats['docs_too_long']} longer than data.max_doc_chars={data.max_doc_chars}, "
            f"{stats['docs_duplicate']} duplicates); add text or widen those bounds"
        )
    train_docs, val_docs = split_documents(kept, data.val_fraction, config.seed)
    if pretrained is not None:
        tokenizer = pretrained
    elif data.tokenizer == "bpe":
        tokenizer = TextTokenizer.train_bpe(train_docs, data.vocab_size)
    else:
        tokenizer = TextTokenizer.train_char(train_docs)
    train_ids = tokenizer.encode_batch(train_docs)
    val_ids = tokenizer.encode_batch(val_docs)
    dtype = token_dtype(tokenizer.vocab_size)
    arrays = {
        "train_tokens": _concatenate(train_ids, tokenizer.eos_id, dtype),
        "val_tokens": _concatenate(val_ids, tokenizer.eos_id, dtype),
    }
    stats.update(
        docs_train=len(train_docs),
        docs_val=len(val_docs),
        chars_read=sum(len(doc) for doc in docs),
        vocab_size=tokenizer.vocab_size,
        train_tokens=len(arrays["train_tokens"]),
        val_tokens=len(arrays["val_tokens"]),
        **length_percentiles([len(ids) for ids in train_ids + val_ids], "doc_tokens"),
    )
    return arrays, {"tokenizer": tokenizer.to_json(), "stats": json.dumps(stats)}


def _dataset_from_entry(
    entry: CacheEntry, config: TrialConfig, stats: dict[str, float | int | bool]
) -> LMDataset:
    block_size = config.data.block_size
    for split in ("train", "val"):
        tokens = len(entry.arrays[f"{split}_tokens"])
        if tokens < block_size:
            raise DataError(
                f"data.block_size={block_size} is larger than the {split} split, which has "
                f"{tokens} tokens; use a smaller data.block_size or more data "
                f"(data.path, data.max_chars, data.val_fraction)"
            )
    return LMDataset(
        entry.arrays["train_tokens"],
        entry.arrays["val_tokens"],
        block_size,
        TextTokenizer.from_json(entry.texts["tokenizer"]),
        stats,
        config.seed,
    )


def _concatenate(docs_ids: Sequence[Sequence[int]], eos_id: int, dtype: np.dtype) -> np.ndarray:
    stream = np.empty(sum(len(ids) + 1 for ids in docs_ids), dtype=dtype)
    position = 0
    for ids in docs_ids:
        stream[position : position + len(ids)] = ids
        position += len(ids)
        stream[position] = eos_id
        position += 1
    return stream


def unigram_val_loss(train_blocks: np.ndarray, val_blocks: np.ndarray, vocab_size: int) -> float:
    """Validation loss of predicting every token by its training frequency (add-one smoothed).

    The bar a language model must clear to have learned anything beyond token counts; scored on
    the same positions as the model's loss (every token of a block but the first).
    """
    counts = np.bincount(np.asarray(train_blocks).ravel(), minlength=vocab_size) + 1.0
    log_probs = np.log(counts / counts.sum())
    targets = np.asarray(val_blocks)[:, 1:].ravel()
    return float(-log_probs[targets].mean()) if targets.size else float("nan")


def _blocks(tokens: np.ndarray, block_size: int) -> np.ndarray:
    count = len(tokens) // block_size
    return tokens[: count * block_size].reshape(count, block_size)


def _as_long(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.int64))
