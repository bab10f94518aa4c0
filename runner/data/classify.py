"""Sequence classification: labelled text, split by class, encoded, batched by length.

Each example is [cls] + tokens + [sep], truncated to data.max_length. Batches group
examples of similar length so that (examples in batch) * (longest in batch) stays within
data.max_tokens_per_batch, and are padded only to their own longest example.

Example:
    >>> data = prepare_classify(config)
    >>> batch = data.train_batch(0, 0)  # keys: input_ids, attention_mask, labels
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

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
from runner.data.clean import clean_texts, cleaning_settings
from runner.data.text import fingerprint, length_percentiles, read_labelled_examples
from runner.data.tokenizer import TextTokenizer
from runner.errors import DataError

SPLITS = ("train", "val")


@dataclass(frozen=True)
class EncodedExamples:
    """Examples of one split: example i is tokens[offsets[i]:offsets[i + 1]], labelled labels[i]."""

    tokens: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def collate(self, rows: np.ndarray, pad_id: int) -> dict[str, torch.Tensor]:
        """The examples `rows` as one batch padded to its longest example."""
        lengths = self.lengths[rows]
        input_ids = np.full((len(rows), int(lengths.max())), pad_id, dtype=np.int64)
        for out, row, length in zip(input_ids, rows, lengths, strict=True):
            out[:length] = self.tokens[self.offsets[row] : self.offsets[row] + length]
        attention_mask = np.arange(input_ids.shape[1]) < lengths[:, None]
        return {
            "input_ids": torch.from_numpy(input_ids),
            "attention_mask": torch.from_numpy(attention_mask.astype(np.int64)),
            "labels": torch.from_numpy(np.asarray(self.labels[rows], dtype=np.int64)),
        }


def length_batches(
    lengths: np.ndarray, max_tokens: int, tie_break: np.ndarray | None = None
) -> list[np.ndarray]:
    """Example indices grouped by length: sorted ascending, each batch filled up to the budget.

    A batch's padded size is its size times its longest (= last) example, kept <= max_tokens.
    Equal lengths are ordered by `tie_break` (default: index); since only equal lengths move,
    the number of batches does not depend on it.
    """
    keys = np.arange(len(lengths)) if tie_break is None else tie_break
    order = np.lexsort((keys, lengths))
    sorted_lengths = lengths[order]
    batches: list[np.ndarray] = []
    start = 0
    for i, longest in enumerate(sorted_lengths.tolist()):
        if (i - start + 1) * longest > max_tokens and i > start:
            batches.append(order[start:i])
            start = i
    batches.append(order[start:])
    return batches


class ClassifyDataset:
    """Length-batched labelled examples; batch sizes follow data.max_tokens_per_batch."""

    def __init__(
        self,
        train: EncodedExamples,
        val: EncodedExamples,
        tokenizer: TextTokenizer,
        label_names: list[str],
        stats: dict[str, float | int | bool],
        seed: int,
        max_tokens_per_batch: int,
    ) -> None:
        self.tokenizer = tokenizer
        self.label_names = label_names
        self.train = train
        self.val = val
        self.seed = seed
        self.max_tokens_per_batch = max_tokens_per_batch
        self.batches_per_epoch = len(length_batches(train.lengths, max_tokens_per_batch))
        self._val_batches = self._batched(np.arange(len(val.labels)))
        self._val_order = stratified_order(val.labels, seed)
        self._val_subsets: dict[int, list[np.ndarray]] = {}
        self._epoch_plan: tuple[int, list[np.ndarray]] | None = None
        self.stats = {
            **stats,
            "max_tokens_per_batch": max_tokens_per_batch,
            "train_batches_per_epoch": self.batches_per_epoch,
            "val_batches": len(self._val_batches),
        }

    def train_batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        """Micro-batch `index` (from 0), a pure function of (seed, index); batch_size is ignored.

        Each epoch draws from (seed, epoch) new tie-breaks among equal lengths and a new batch
        order; the number of batches per epoch stays the same.
        """
        epoch, position = divmod(index, self.batches_per_epoch)
        return self.train.collate(self._batches_of_epoch(epoch)[position], self.tokenizer.pad_id)

    def val_batches(self, batch_size: int, max_batches: int) -> list[dict[str, torch.Tensor]]:
        """The fixed validation set: the same batches in the same order (0: all batches).

        With max_batches > 0 the batches hold a seeded, stratified subset of the validation
        examples: the most examples of stratified_order whose length batches number at most
        max_batches, so each class keeps its share (a prefix of batches in length or file
        order measured rt-polarity on 27% positives instead of 50%).
        """
        if max_batches <= 0 or max_batches >= len(self._val_batches):
            chosen = self._val_batches
        else:
            if max_batches not in self._val_subsets:
                self._val_subsets[max_batches] = self._subset_batches(max_batches)
            chosen = self._val_subsets[max_batches]
        return [self.val.collate(rows, self.tokenizer.pad_id) for rows in chosen]

    def _batched(self, rows: np.ndarray) -> list[np.ndarray]:
        """Length batches of the validation examples `rows`, in an order shuffled by seed."""
        batches = [
            rows[b] for b in length_batches(self.val.lengths[rows], self.max_tokens_per_batch)
        ]
        order = np.random.default_rng(self.seed).permutation(len(batches))
        return [batches[i] for i in order]

    def _subset_batches(self, max_batches: int) -> list[np.ndarray]:
        # the longest prefix of the stratified order that fits in max_batches length batches
        low, high = 1, len(self._val_order)
        while low < high:
            middle = (low + high + 1) // 2
            rows = self._val_order[:middle]
            if (
                len(length_batches(self.val.lengths[rows], self.max_tokens_per_batch))
                <= max_batches
            ):
                low = middle
            else:
                high = middle - 1
        return self._batched(np.sort(self._val_order[:low]))

    def num_tokens(self, batch: Mapping[str, torch.Tensor]) -> int:
        """Real (non-pad) tokens in a batch."""
        return int(batch["attention_mask"].sum())

    def _batches_of_epoch(self, epoch: int) -> list[np.ndarray]:
        if self._epoch_plan is None or self._epoch_plan[0] != epoch:
            rng = np.random.default_rng((self.seed, epoch))
            lengths = self.train.lengths
            batches = length_batches(lengths, self.max_tokens_per_batch, rng.random(len(lengths)))
            self._epoch_plan = (epoch, [batches[i] for i in rng.permutation(len(batches))])
        return self._epoch_plan[1]


def stratified_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """Example indices in a seeded order whose every prefix keeps each class's share (within 1).

    Each class is shuffled by seed; its k-th example of n gets the position (k + 0.5) / n, and
    the examples are merged by position, so the classes interleave in proportion.
    """
    rng = np.random.default_rng(seed)
    positions = np.empty(len(labels), dtype=np.float64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        positions[members] = (np.arange(len(members)) + 0.5) / len(members)
    return np.lexsort((rng.random(len(labels)), positions))


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
    if pretrained is not None:
        tokenizer = pretrained
    elif data.tokenizer == "bpe":
        tokenizer = TextTokenizer.train_bpe((texts[i] for i in train_rows), data.vocab_size)
    else:
        tokenizer = TextTokenizer.train_char([texts[i] for i in train_rows])
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
