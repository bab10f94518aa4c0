"""Sequence classification: labelled text, split by class, encoded, batched by length.

Each example is [cls] + tokens + [sep], truncated to data.max_length. Here: reading, cleaning,
splitting (stratified by class), EDA copies of training examples, tokenizing and the cache; the
dataset that batches the encoded examples by length is runner.data.classify_batches (its names
are re-exported here).

Example:
    >>> data = prepare_classify(config)
    >>> batch = data.train_batch(0, 0)  # keys: input_ids, attention_mask, labels
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from runner.config import TrialConfig
from runner.data.augment import EdaRates, augment_examples
from runner.data.cache import (
    CacheEntry,
    cache_key,
    cache_root,
    load_entry,
    store_entry,
    token_dtype,
)
from runner.data.check import check_data
from runner.data.classify_batches import (
    ClassifyDataset,
    EncodedExamples,
    length_batches,
    stratified_order,
)
from runner.data.clean import clean_texts, cleaning_settings
from runner.data.text import fingerprint, length_percentiles, read_labelled_examples
from runner.data.tokenizer import TextTokenizer
from runner.errors import DataError

__all__ = [
    "ClassifyDataset",
    "EncodedExamples",
    "length_batches",
    "prepare_classify",
    "split_examples",
    "stratified_order",
]

SPLITS = ("train", "val")


def prepare_classify(
    config: TrialConfig, tokenizer: TextTokenizer | None = None
) -> ClassifyDataset:
    """Read, split, tokenize and encode the labelled data of `config.data` (or load the cache).

    With `tokenizer` the examples are encoded with it (multitask: one tokenizer for all tasks)
    instead of one trained on this data or model.pretrained's.
    """
    started = time.perf_counter()
    data = config.data
    check_data(config, f"experiment '{config.name}'")
    pretrained = tokenizer or (
        TextTokenizer.from_pretrained(config.model.pretrained) if config.model.pretrained else None
    )
    root = cache_root(data.cache_dir)
    texts, labels, dropped = read_labelled_examples(
        Path(data.path), data.text_column, data.label_column
    )
    label_names = sorted(set(labels), key=_natural_order)
    if len(label_names) < 2:
        raise DataError(
            f"data.path: {data.path} has {len(label_names)} class(es) {label_names}; "
            "classification needs examples of at least 2 labels"
        )
    key = cache_key(
        {
            "task": "classify",
            "source": fingerprint(texts + labels),
            "tokenizer": pretrained.fingerprint() if pretrained else data.tokenizer,
            "vocab_size": data.vocab_size if not pretrained and data.tokenizer == "bpe" else None,
            "max_length": data.max_length,
            "val_fraction": data.val_fraction,
            "seed": config.seed,
            "augment": [data.augment_copies, *vars(_eda_rates(config)).values()],
            **({"clean": cleaning_settings(data.clean)} if data.clean.enabled else {}),
        }
    )
    entry = load_entry(root, key)
    from_cache = entry is not None
    if entry is None:
        examples_read = len(texts) + dropped
        cleaning = None
        if data.clean.enabled:
            texts, rows, cleaning = clean_texts(texts, data.clean)
            labels = [labels[row] for row in rows]
            label_names = sorted(set(labels), key=_natural_order)
            if len(label_names) < 2:
                raise DataError(
                    f"data.path: {data.path} has {len(label_names)} class(es) {label_names} left "
                    f"after data.clean ({cleaning}); classification needs at least 2: relax data.clean"
                )
        label_id = {name: i for i, name in enumerate(label_names)}
        arrays, tokenizer, stats = _encode(texts, [label_id[x] for x in labels], config, pretrained)
        stats.update(
            examples_read=examples_read,
            examples_dropped_empty=dropped,
            num_labels=len(label_names),
            **({"cleaning": cleaning} if cleaning is not None else {}),
        )
        meta = {"tokenizer": tokenizer.to_json(), "stats": json.dumps(stats)}
        entry = store_entry(root, key, arrays, meta | {"labels": json.dumps(label_names)})
    stats = json.loads(entry.texts["stats"])
    stats.update(from_cache=from_cache, prepare_seconds=round(time.perf_counter() - started, 3))
    return ClassifyDataset(
        *(_split_from_entry(entry, split) for split in SPLITS),
        TextTokenizer.from_json(entry.texts["tokenizer"]),
        json.loads(entry.texts["labels"]),
        stats,
        config.seed,
        data.max_tokens_per_batch,
    )


def split_examples(
    label_ids: Sequence[int], val_fraction: float, seed: int
) -> tuple[list[int], list[int]]:
    """Stratified (train, val) example indices: each class gives about val_fraction to val.

    A class with a single example stays in train; the indices keep the file order.
    """
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(label_ids):
        by_label.setdefault(label, []).append(index)
    rng = random.Random(seed)
    val: list[int] = []
    for label in sorted(by_label):
        members = by_label[label]
        rng.shuffle(members)
        count = min(max(round(val_fraction * len(members)), 1), len(members) - 1)
        val.extend(members[:count])
    chosen = set(val)
    return [i for i in range(len(label_ids)) if i not in chosen], sorted(val)


def _encode(
    texts: Sequence[str],
    label_ids: Sequence[int],
    config: TrialConfig,
    pretrained: TextTokenizer | None,
) -> tuple[dict[str, np.ndarray], TextTokenizer, dict[str, int | float]]:
    data = config.data
    train_rows, val_rows = split_examples(label_ids, data.val_fraction, config.seed)
    if not val_rows:
        raise DataError(
            f"data.path: {data.path} has too few examples per class for a validation split; "
            "add examples"
        )
    # EDA copies of training examples only, appended after every original text; the
    # validation rows index originals, so evaluation never sees an augmented text
    augmented = augment_examples(
        [texts[i] for i in train_rows], _eda_rates(config), data.augment_copies, config.seed
    )
    texts = [*texts, *(text for _, text in augmented)]
    label_ids = [*label_ids, *(label_ids[train_rows[source]] for source, _ in augmented)]
    train_rows = [*train_rows, *range(len(texts) - len(augmented), len(texts))]
    tokenizer = (
        pretrained
        if pretrained is not None
        else TextTokenizer.train(data.tokenizer, (texts[i] for i in train_rows), data.vocab_size)
    )
    ids = tokenizer.encode_batch(texts)
    full_lengths = [len(x) + 2 for x in ids]  # with cls and sep, before truncation
    dtype = token_dtype(tokenizer.vocab_size)
    arrays: dict[str, np.ndarray] = {}
    for split, rows in zip(SPLITS, (train_rows, val_rows), strict=True):
        encoded = [
            [tokenizer.cls_id, *ids[i][: data.max_length - 2], tokenizer.sep_id] for i in rows
        ]
        arrays[f"{split}_tokens"] = np.fromiter(
            (t for example in encoded for t in example), dtype=dtype
        )
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(x) for x in encoded], dtype=np.int64)
        arrays[f"{split}_labels"] = np.asarray([label_ids[i] for i in rows], dtype=np.int64)
    stats = {
        "vocab_size": tokenizer.vocab_size,
        "train_examples": len(train_rows),
        "train_examples_augmented": len(augmented),
        "val_examples": len(val_rows),
        "examples_truncated": sum(n > data.max_length for n in full_lengths),
        **length_percentiles(full_lengths, "example_tokens"),
    }
    return arrays, tokenizer, stats


def _eda_rates(config: TrialConfig) -> EdaRates:
    d = config.data
    return EdaRates(
        d.augment_synonym_replacement,
        d.augment_random_insertion,
        d.augment_random_swap,
        d.augment_random_deletion,
    )


def _split_from_entry(entry: CacheEntry, split: str) -> EncodedExamples:
    return EncodedExamples(
        entry.arrays[f"{split}_tokens"],
        entry.arrays[f"{split}_offsets"],
        entry.arrays[f"{split}_labels"],
    )


def _natural_order(label: str) -> tuple[int, float, str]:
    # Numeric labels sort by value ("2" before "10"), then any others as text.
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
