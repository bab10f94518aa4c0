"""The lm dataset: packed blocks of a train and a validation token stream.

A token stream is cut into non-overlapping blocks of exactly data.block_size tokens, the
remainder dropped, so no batch holds padding; the labels are the inputs (the loop shifts them).
With data.packing_strategy=documents a batch also carries position_ids that restart at every
document and labels of -100 at each document's first token (document_positions_and_labels; see
runner.data.lm, which prepares the streams and builds the dataset). unigram_val_loss is the bar
a model must clear, in the dataset's stats.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from runner.data.tokenizer import TextTokenizer


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
        packing_strategy: str = "wrapped",
        bos_id: int | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.label_names = []
        self.block_size = block_size
        self.seed = seed
        self.packing_strategy = packing_strategy
        self.bos_id = bos_id
        self.train_blocks = _blocks(train_tokens, block_size)
        self.val_blocks = _blocks(val_tokens, block_size)
        self.stats = {
            **stats,
            "block_size": block_size,
            "train_blocks": len(self.train_blocks),
            "val_blocks": len(self.val_blocks),
            "unigram_val_loss": unigram_val_loss(
                self.train_blocks,
                self.val_blocks,
                tokenizer.vocab_size,
                tokenizer.eos_id if packing_strategy == "documents" else None,
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
        return self._batch(self.train_blocks[rows])

    def val_batches(self, batch_size: int, max_batches: int) -> list[dict[str, torch.Tensor]]:
        """The fixed validation set: val blocks in order, `batch_size` per batch (0: all)."""
        starts = range(0, len(self.val_blocks), batch_size)
        if max_batches > 0:
            starts = starts[:max_batches]
        return [self._batch(self.val_blocks[s : s + batch_size]) for s in starts]

    def _batch(self, blocks: np.ndarray) -> dict[str, torch.Tensor]:
        blocks = np.asarray(blocks, dtype=np.int64)
        if self.packing_strategy != "documents":
            return {"input_ids": torch.from_numpy(blocks)}
        position_ids, labels = document_positions_and_labels(blocks, self.tokenizer.eos_id)
        return {
            "input_ids": torch.from_numpy(blocks),
            "position_ids": torch.from_numpy(position_ids),
            "labels": torch.from_numpy(labels),
        }

    def num_tokens(self, batch: Mapping[str, torch.Tensor]) -> int:
        """Tokens in a batch (lm batches hold no padding)."""
        return batch["input_ids"].numel()

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._permutations:
            self._permutations = {}  # batches move forward: only the current epoch is needed
            rng = np.random.default_rng((self.seed, epoch))
            self._permutations[epoch] = rng.permutation(len(self.train_blocks))
        return self._permutations[epoch]


def document_positions_and_labels(blocks: np.ndarray, eos_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(position_ids, labels) of packed blocks whose documents end with eos_id.

    A document starts at each block start and after each eos (at its bos, when there is one:
    the bos is then predicted from nothing, and the document's first real token from it);
    positions count from 0 there; labels are the ids with -100 at every document start, so
    the loss never asks a document to predict the next one's first token.
    """
    starts = np.zeros(blocks.shape, dtype=bool)
    starts[:, 0] = True
    starts[:, 1:] = blocks[:, :-1] == eos_id
    index = np.broadcast_to(np.arange(blocks.shape[1]), blocks.shape)
    last_start = np.maximum.accumulate(np.where(starts, index, 0), axis=1)
    labels = blocks.astype(np.int64)  # the cache stores ids as uint16, which has no -100
    labels[starts] = -100
    return (index - last_start).astype(np.int64), labels


def unigram_val_loss(
    train_blocks: np.ndarray,
    val_blocks: np.ndarray,
    vocab_size: int,
    documents_eos_id: int | None = None,
) -> float:
    """Validation loss of predicting every token by its training frequency (add-one smoothed).

    The bar a language model must clear to have learned anything beyond token counts; scored on
    the same positions as the model's loss (every token of a block but the first; with
    documents packing, pass its eos id: not the document starts, which the loss ignores).
    """
    counts = np.bincount(np.asarray(train_blocks).ravel(), minlength=vocab_size) + 1.0
    log_probs = np.log(counts / counts.sum())
    blocks = np.asarray(val_blocks)
    if documents_eos_id is None:
        targets = blocks[:, 1:].ravel()
    else:
        _, labels = document_positions_and_labels(blocks, documents_eos_id)
        targets = labels[:, 1:][labels[:, 1:] != -100]
    return float(-log_probs[targets].mean()) if targets.size else float("nan")


def _blocks(tokens: np.ndarray, block_size: int) -> np.ndarray:
    count = len(tokens) // block_size
    return tokens[: count * block_size].reshape(count, block_size)
