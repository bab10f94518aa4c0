"""Causal language modelling: a text corpus, cleaned, split, tokenized and packed into blocks.

Each document's tokens are followed by eos and the documents are concatenated into one
stream per split; the stream is cut into non-overlapping blocks of exactly data.block_size
tokens and the remainder dropped, so no batch holds padding. The labels are the inputs
(the loop shifts them). The cache holds the token streams, not the blocks: the blocks are
a zero-copy view, so trials that differ only in block_size share one cache entry.

data.packing_strategy=documents keeps the same blocks but makes each document its own
sequence inside them, as transformers' DataCollatorWithFlattening does for padding-free
batches: batches carry `position_ids` that restart at 0 at every document start (and at
every block start), which transformers' masking (masking_utils.find_packed_sequence_indices)
turns into a block-diagonal causal mask when no attention_mask is given; and `labels` equal
to the inputs except -100 at each document's first token, whose prediction would read the
previous document. data.add_bos_token puts a begin-of-document token before each document
(the tokenizer's <cls>: our tokenizers have no separate <bos>, and <cls> is unused by lm).

Here: reading, cleaning, splitting, tokenizing and the cache of the token streams; the dataset
over their blocks (LMDataset, the documents' positions and labels, the unigram baseline) is
runner.data.lm_blocks, whose names are re-exported here.

Example:
    >>> data = prepare_lm(config)
    >>> data.train_batch(0, 8)["input_ids"].shape  # (8, config.data.block_size)
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import numpy as np

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
from runner.data.clean import clean_texts, cleaning_settings
from runner.data.lm_blocks import LMDataset, document_positions_and_labels, unigram_val_loss
from runner.data.text import (
    clean_documents,
    fingerprint,
    length_percentiles,
    read_documents,
    split_documents,
)
from runner.data.tokenizer import TextTokenizer
from runner.errors import DataError

__all__ = ["LMDataset", "document_positions_and_labels", "prepare_lm", "unigram_val_loss"]


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
            # only when on, so that the cache entries written before this option stay valid
            **({"add_bos_token": True} if data.add_bos_token else {}),
            **({"clean": cleaning_settings(data.clean)} if data.clean.enabled else {}),
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
    cleaning = None
    cleaned = docs
    if data.clean.enabled:
        cleaned, _, cleaning = clean_texts(docs, data.clean)
    kept, stats = clean_documents(cleaned, data.min_doc_chars, data.max_doc_chars)
    stats["docs_read"] = len(docs)
    if cleaning is not None:
        stats["cleaning"] = cleaning
    if not kept:
        by_clean = (
            f"{cleaning['docs_in'] - cleaning['docs_out']} removed by data.clean ("
            + ", ".join(f"{k} {v}" for k, v in cleaning.items() if k.startswith("removed") and v)
            + "), "
            if cleaning is not None
            else ""
        )
        raise DataError(
            f"data.path: {where} has no documents left after cleaning ({stats['docs_read']} read: "
            f"{by_clean}"
            f"{stats['docs_too_short']} shorter than data.min_doc_chars={data.min_doc_chars}, "
            f"{stats['docs_too_long']} longer than data.max_doc_chars={data.max_doc_chars}, "
            f"{stats['docs_duplicate']} duplicates); add text or widen those bounds"
        )
    train_docs, val_docs = split_documents(kept, data.val_fraction, config.seed)
    tokenizer = (
        pretrained
        if pretrained is not None
        else TextTokenizer.train(data.tokenizer, train_docs, data.vocab_size)
    )
    train_ids = tokenizer.encode_batch(train_docs)
    val_ids = tokenizer.encode_batch(val_docs)
    dtype = token_dtype(tokenizer.vocab_size)
    bos_id = _bos_id(tokenizer, config)
    arrays = {
        "train_tokens": _concatenate(train_ids, tokenizer.eos_id, dtype, bos_id),
        "val_tokens": _concatenate(val_ids, tokenizer.eos_id, dtype, bos_id),
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
    tokenizer = TextTokenizer.from_json(entry.texts["tokenizer"])
    return LMDataset(
        entry.arrays["train_tokens"],
        entry.arrays["val_tokens"],
        block_size,
        tokenizer,
        stats,
        config.seed,
        packing_strategy=config.data.packing_strategy,
        bos_id=_bos_id(tokenizer, config),
    )


def _bos_id(tokenizer: TextTokenizer, config: TrialConfig) -> int | None:
    """The begin-of-document id when data.add_bos_token is on (see the module docstring)."""
    if not config.data.add_bos_token:
        return None
    if tokenizer.cls_id == tokenizer.eos_id:
        raise DataError(
            "data.add_bos_token: this tokenizer's begin token is its end token (as GPT-2's "
            "<|endoftext|>), which already separates the documents; leave add_bos_token off"
        )
    return tokenizer.cls_id


def _concatenate(
    docs_ids: Sequence[Sequence[int]], eos_id: int, dtype: np.dtype, bos_id: int | None = None
) -> np.ndarray:
    extra = 2 if bos_id is not None else 1
    stream = np.empty(sum(len(ids) + extra for ids in docs_ids), dtype=dtype)
    position = 0
    for ids in docs_ids:
        if bos_id is not None:
            stream[position] = bos_id
            position += 1
        stream[position : position + len(ids)] = ids
        position += len(ids)
        stream[position] = eos_id
        position += 1
    return stream
