"""The stream of training micro-batches a rank draws: in this process, or from DataLoader workers.

Micro-batch k of a rank is data.train_batch(start + k * step, size), a pure function of its
index, so a run with worker processes trains on exactly the batches of a run without them
(and resumes the same way). train.dataloader_num_workers > 0 builds them in worker
processes ahead of the step (train.dataloader_prefetch_factor each); dataloader_pin_memory
puts them in page-locked memory for faster, asynchronous copies to a GPU.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader

from runner.config import TrainConfig


class _Batches(torch.utils.data.Dataset):
    """Map-style view: item i is micro-batch i (the DataLoader's sampler picks the indices)."""

    def __init__(self, data, size: int) -> None:
        self.data, self.size = data, size

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.data.train_batch(index, self.size)


def train_batches(
    data, start: int, step: int, size: int, t: TrainConfig
) -> Iterator[dict[str, torch.Tensor]]:
    """Micro-batches start, start + step, start + 2 * step, ... without end."""
    indices = itertools.count(start, step)
    if t.dataloader_num_workers == 0 and not t.dataloader_pin_memory:
        return (data.train_batch(i, size) for i in indices)
    loader = DataLoader(
        _Batches(data, size),
        batch_size=None,  # items are whole micro-batches already
        sampler=indices,
        num_workers=t.dataloader_num_workers,
        pin_memory=t.dataloader_pin_memory and torch.cuda.is_available(),
        prefetch_factor=t.dataloader_prefetch_factor if t.dataloader_num_workers else None,
    )
    return iter(loader)
