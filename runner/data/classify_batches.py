"""The classify dataset: encoded examples, batched by length, and a stratified validation subset.

Batches group examples of similar length so that (examples in batch) * (longest in batch)
stays within data.max_tokens_per_batch, and are padded only to their own longest example. A
training batch is a pure function of (seed, index), reshuffled each epoch; the validation
batches are fixed, or a seeded subset that keeps each class's share (stratified_order).
runner.data.classify prepares the examples and builds the dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from runner.data.tokenizer import TextTokenizer


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
