"""Forward pass and loss for each task, with label smoothing."""

from __future__ import annotations

from typing import Any

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
) -> tuple[torch.Tensor, Any]:
    """(mean loss, logits). lm predicts token t+1 from tokens <= t; classify one label per example;
    multitask: (the loss weights' sum of the tasks' losses, {task: logits}), runner.multitask.

    Labels equal to ignore_index (train.ignore_index) or to -100 take no part in the loss.
    """
    if task == "multitask":
        out = model(batch, label_smoothing=label_smoothing, ignore_index=ignore_index)
        return out.loss, out.logits
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
        targets = ignoring(targets, ignore_index)
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
        ignoring(batch["labels"], ignore_index),
        ignore_index=IGNORE_INDEX,
        label_smoothing=label_smoothing,
    )
    return loss, logits


def ignoring(labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """labels with train.ignore_index turned into -100, which cross_entropy ignores."""
    # the user's ignore value becomes -100, so the runner's own -100 masks keep working too
    if ignore_index == IGNORE_INDEX:
        return labels
    return labels.masked_fill(labels == ignore_index, IGNORE_INDEX)


def classification_hits(
    logits: Any, batch: dict[str, torch.Tensor], ignore_index: int
) -> torch.Tensor:
    """[correctly predicted, counted] training examples of a batch, on the device.

    classify: logits of the batch; multitask: {task: logits}, counted over all tasks.
    """
    if isinstance(logits, dict):
        from runner.data.multitask import split_batch

        parts = split_batch(batch)
        pairs = [(logits[task], parts[task]["labels"]) for task in logits]
    else:
        pairs = [(logits, batch["labels"])]
    counts = torch.zeros(2, dtype=torch.long, device=pairs[0][1].device)
    for task_logits, labels in pairs:
        counted = (labels != ignore_index) & (labels >= 0)
        hits = (task_logits.detach().argmax(-1) == labels) & counted
        counts += torch.stack([hits.sum(), counted.sum()])
    return counts
