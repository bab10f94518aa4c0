"""The data side of a trial: prepare_data(config) -> a Dataset the training loop draws from.

Example:
    >>> data = prepare_data(config)
    >>> batch = data.train_batch(0, config.train.per_device_train_batch_size)
    >>> fixed = data.val_batches(32, max_batches=20)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import torch

from runner.config import TrialConfig
from runner.data.classify import ClassifyDataset, prepare_classify
from runner.data.lm import LMDataset, prepare_lm
from runner.data.multitask import MultiTaskDataset, prepare_multitask
from runner.data.tokenizer import TextTokenizer

__all__ = [
    "ClassifyDataset",
    "Dataset",
    "LMDataset",
    "MultiTaskDataset",
    "TextTokenizer",
    "prepare_data",
]


class Dataset(Protocol):
    """What the training loop needs from prepared data."""

    tokenizer: TextTokenizer
    label_names: list[str]  # classify; [] for lm and multitask (task_labels)
    stats: dict[str, float | int | bool]

    def train_batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        """Micro-batch `index` (a global counter from 0): the same index, the same batch."""
        ...

    def val_batches(self, batch_size: int, max_batches: int) -> list[dict[str, torch.Tensor]]:
        """The fixed validation set, the same batches in the same order (max_batches 0: all)."""
        ...

    def num_tokens(self, batch: Mapping[str, torch.Tensor]) -> int:
        """Real (non-pad) tokens in a batch, for throughput."""
        ...


def prepare_data(config: TrialConfig) -> Dataset:
    """The prepared data of a trial, by task; raises DataError on unusable input."""
    if config.task == "classify":
        return prepare_classify(config)
    if config.task == "multitask":
        return prepare_multitask(config)
    return prepare_lm(config)
