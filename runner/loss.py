"""Forward pass and loss for each task, with label smoothing."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100  # labels that take no part in the loss (PyTorch's and transformers' default)


def forward_loss(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    task: str,
    label_smoothing: float = 0.0,
    ignore_index: int = IGNORE_INDEX,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, logits). lm predicts token t+1 from tokens <= t; classify one label per example.

    Labels equal to ignore_index (train.ignore_index) or to -100 take no part in the loss.
    """
    if task == "lm":
        ids = batch["input_ids"]
        if "position_ids" in batch:
            # packed documents (runner.data.lm): position ids restarting at each document and no
            # attention_mask make transformers build a block-diagonal causal mask; use_cache=False
            # because with a cache it skips that detection
            logits = model(
                input_ids=ids, position_ids=batch["position_ids"], use_cache=False
            ).logits
        else:
            logits = model(input_ids=ids).logits
        targets = batch.get("labels", ids)  # -100 where a target would cross a document boundary
        targets = _ignoring(targets, ignore_index)
        # float() so the softmax of bf16 logits is computed in full precision
        loss = F.cross_entropy(
            logits[:, :-1].flatten(0, 1).float(),
            targets[:, 1:].flatten(),
            ignore_index=IGNORE_INDEX,
            label_smoothing=label_smoothing,
        )
        return loss, logits
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    loss = F.cross_entropy(
        logits.float(),
        _ignoring(batch["labels"], ignore_index),
        ignore_index=IGNORE_INDEX,
        label_smoothing=label_smoothing,
    )
    return loss, logits


def _ignoring(labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    # the user's ignore value becomes -100, so the runner's own -100 masks keep working too
    if ignore_index == IGNORE_INDEX:
        return labels
    return labels.masked_fill(labels == ignore_index, IGNORE_INDEX)
