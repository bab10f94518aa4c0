"""Forward pass and loss for each task, with label smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def forward_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], task: str, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, logits). lm predicts token t+1 from tokens <= t; classify one label per example."""
    if task == "lm":
        ids = batch["input_ids"]
        logits = model(input_ids=ids).logits
        # float() so the softmax of bf16 logits is computed in full precision
        loss = F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(),
            ids[:, 1:].flatten(),
            label_smoothing=label_smoothing,
        )
        return loss, logits
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    loss = F.cross_entropy(logits.float(), batch["labels"], label_smoothing=label_smoothing)
    return loss, logits
