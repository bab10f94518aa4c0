"""Evaluation on the fixed validation set: loss and perplexity (lm), accuracy and macro F1
(classify; multitask per task and their mean, runner.multitask)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from runner.classification_metrics import macro_f1
from runner.config import apply_overrides, config_from_dict, config_to_dict
from runner.data import prepare_data
from runner.export import load_trained_model
from runner.loss import IGNORE_INDEX, forward_loss
from runner.multitask import evaluate_tasks
from runner.precision import Precision, resolve_device, resolve_precision


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    batches: list[dict[str, torch.Tensor]],
    task: str,
    precision: Precision,
    num_labels: int = 0,
    latencies: list[float] | None = None,
) -> dict[str, float]:
    """Validation metrics, keys prefixed `val_`; restores the model's train/eval mode.

    With a `latencies` list, each batch's forward time in seconds is appended to it (the device
    synchronised, so it is the batch's inference latency, not the time to queue its kernels).
    """
    if task == "multitask":  # per-task metrics and their mean
        return evaluate_tasks(model, batches, precision, latencies)
    was_training = model.training
    model.eval()
    total_loss, total_weight = 0.0, 0
    predictions, labels = [], []
    for batch in batches:
        batch = {k: v.to(precision.device, non_blocking=True) for k, v in batch.items()}
        started = time.perf_counter()
        with precision.autocast():
            loss, logits = forward_loss(model, batch, task)
        if latencies is not None:
            if precision.device.type == "cuda":
                torch.cuda.synchronize(precision.device)
            latencies.append(time.perf_counter() - started)
        # weight by predicted tokens (lm) or examples (classify) so the mean is over the whole set
        if task == "lm":
            targets = batch.get("labels", batch["input_ids"])[:, 1:]
            weight = int((targets != IGNORE_INDEX).sum())
        else:
            weight = len(batch["labels"])
        total_loss += loss.item() * weight
        total_weight += weight
        if task == "classify":
            predictions.append(logits.argmax(-1).cpu())
            labels.append(batch["labels"].cpu())
    model.train(was_training)
    val_loss = total_loss / max(total_weight, 1)
    if task == "lm":
        return {"val_loss": val_loss, "val_perplexity": math.exp(min(val_loss, 50.0))}
    predicted, truth = torch.cat(predictions), torch.cat(labels)
    return {
        "val_loss": val_loss,
        "val_accuracy": (predicted == truth).float().mean().item(),
        "val_f1": macro_f1(predicted, truth, num_labels),
    }


def evaluate_checkpoint(checkpoint: str | Path, overrides: Sequence[str] = ()) -> dict[str, float]:
    """Metrics of a saved model on the whole held-out split of its own config (or overridden data).

    Overrides change where and how the data is read (e.g. data.path, data.cache_dir); the model
    and tokenizer always come from the checkpoint.
    """
    model, _, config = load_trained_model(checkpoint)
    if overrides:
        raw = apply_overrides(config_to_dict(config), overrides, "override")
        config = config_from_dict(raw, source=str(checkpoint))
    data = prepare_data(config)
    device = resolve_device(config.train)
    precision = resolve_precision(config.train, device)
    batches = data.val_batches(config.train.per_device_train_batch_size, 0)
    return evaluate(model.to(device), batches, config.task, precision, len(data.label_names))
