"""One optimizer step of a trial: its micro-batches with gradient accumulation, clipping, the
GradScaler, and the step's share of the train metrics (runner.loop runs it once a step)."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from runner.loss import classification_hits, forward_loss
from runner.multitask import task_cross_entropies
from runner.precision import unscale_and_clip
from runner.schedule import lr_at
from runner.throughput import peak_memory_mb
from runner.trial_setup import Trial

log_to_console = logging.getLogger("runner")


@dataclass
class StepResult:
    """One optimizer step, as the log, the monitor and the stop decision see it."""

    lr: float
    loss: float  # the mean over micro-batches (and, under DDP, over ranks)
    grad_norm: float  # before clipping
    tokens: int  # all ranks'
    accuracy_counts: torch.Tensor  # classify: [correct, counted] on the device (rank 0's)
    task_losses: torch.Tensor  # multitask: each task's cross-entropy (rank 0's)
    step_time: float
    events: list[dict[str, Any]]  # the anomaly monitor's
    layer_grad_norms: dict[str, float] | None  # every monitor.layer_grad_norm_steps steps


@dataclass
class _MicroBatchTotals:
    loss_sum: torch.Tensor
    accuracy_counts: torch.Tensor
    task_losses: torch.Tensor
    tokens: int = 0


def train_step(trial: Trial, batches: Iterator[dict[str, torch.Tensor]]) -> StepResult:
    """Learning rate, unfreezing, micro-batches, clip, then the update unless it is non-finite."""
    state, t, world = trial.state, trial.train, trial.world
    lr = _set_learning_rate(trial)
    step_start = time.perf_counter()
    totals = _run_micro_batches(trial, batches)
    grad_norm = unscale_and_clip(trial.scaler, trial.optimizer, trial.params, t.max_grad_norm)
    # one host sync for the numbers the guard and the log need; under DDP the loss is
    # the mean over ranks and tokens are all ranks'
    loss, grad_norm, tokens = world.step_totals(totals.loss_sum, grad_norm, totals.tokens)
    events = trial.monitor.observe(loss, grad_norm)
    if math.isfinite(loss) and (math.isfinite(grad_norm) or trial.scaler.is_enabled()):
        trial.scaler.step(trial.optimizer)  # GradScaler skips the step itself on fp16 overflow
        state.nonfinite_streak = 0
    else:
        state.nonfinite_streak += 1  # skip: never let a NaN reach the weights
    trial.scaler.update()
    state.step += 1
    every = trial.config.monitor.layer_grad_norm_steps
    layer_norms = layer_grad_norms(trial.model) if every and state.step % every == 0 else None
    trial.optimizer.zero_grad(set_to_none=True)
    step_time = time.perf_counter() - step_start
    return StepResult(
        lr,
        loss,
        grad_norm,
        tokens,
        totals.accuracy_counts,
        totals.task_losses,
        step_time,
        events,
        layer_norms,
    )


def _set_learning_rate(trial: Trial) -> float:
    """The schedule's rate for this step (times each group's layer-wise decay), and unfreezing."""
    step = trial.state.step
    lr = lr_at(step, trial.train)
    for group in trial.optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)  # layer-wise lr decay
    if trial.unfreezing is not None and trial.unfreezing.apply(step):
        log_to_console.info(
            "unfreezing: depth %d and above train from step %d",
            trial.unfreezing.lowest_trainable,
            step,
        )
    return lr


def _run_micro_batches(trial: Trial, batches: Iterator[dict]) -> _MicroBatchTotals:
    """Forward and backward over the step's micro-batches; gradients accumulate (under DDP
    they are averaged over ranks in the last one's backward)."""
    state, t, world, device = trial.state, trial.train, trial.world, trial.device
    task, accumulation = trial.config.task, trial.batches.accumulation
    totals = _MicroBatchTotals(
        loss_sum=torch.zeros((), device=device),
        # classify train accuracy: [correct, counted] summed on the device, read once a step
        accuracy_counts=torch.zeros(2, dtype=torch.long, device=device),
        task_losses=torch.zeros(len(trial.config.tasks), device=device),  # multitask, per task
    )
    logging_step = (state.step + 1) % t.logging_steps == 0 or state.step + 1 == t.max_steps
    recording = (
        trial.activations.recording()
        if trial.activations is not None and logging_step
        else contextlib.nullcontext()
    )
    for micro in range(accumulation):
        world.sync_gradients(micro == accumulation - 1)
        # rank r of N takes micro-batch index + r: together one global micro-batch
        batch = next(batches)  # micro-batch index state.micro_index + world.rank
        state.micro_index += world.size
        totals.tokens += trial.data.num_tokens(batch)
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        with trial.precision.autocast(), recording:
            loss, logits = forward_loss(
                trial.train_model, batch, task, t.label_smoothing_factor, t.ignore_index
            )
            loss = loss / accumulation
        trial.scaler.scale(loss).backward()
        totals.loss_sum += loss.detach()
        if task != "lm":  # classify, multitask (all tasks' examples)
            totals.accuracy_counts += classification_hits(logits, batch, t.ignore_index)
        if task == "multitask":
            totals.task_losses += task_cross_entropies(logits, batch, t.ignore_index) / accumulation
    return totals


def count_step(trial: Trial, step: StepResult) -> dict[str, float | int] | None:
    """Add the step to the train-metric window and the epoch; the epoch's summary when the
    epoch's last micro-batch was in this step, else None."""
    state = trial.state
    right, examples = (  # rank 0's examples under DDP
        step.accuracy_counts.tolist() if trial.config.task != "lm" else (0, 0)
    )
    if math.isfinite(step.loss):
        state.window_loss += step.loss * step.tokens
        state.epoch_loss += step.loss * step.tokens
    state.window_tokens += step.tokens
    state.window_correct += right
    state.window_examples += examples
    if trial.config.task == "multitask":  # rank 0's, as train_accuracy
        tasks = trial.data.tasks
        state.add_task_losses(dict(zip(tasks, step.task_losses.tolist(), strict=True)))
    state.epoch_tokens += step.tokens
    state.epoch_correct += right
    state.epoch_examples += examples
    state.epoch_steps += 1
    finished_epochs = state.micro_index // trial.batches.micro_batches_per_epoch
    if finished_epochs > state.epoch:
        state.epoch = finished_epochs - 1
        return state.end_epoch()
    return None


def train_record(
    trial: Trial, step: StepResult, flops_per_token: float, peak_flops: float | None
) -> dict[str, float]:
    """The train record: the window's loss and throughput, and this step's lr and norm."""
    state, device = trial.state, trial.device
    tokens_per_sec = state.window_tokens / max(state.window_seconds, 1e-9)
    train = {
        "loss": state.window_loss / max(state.window_tokens, 1),
        "lr": step.lr,
        "grad_norm": step.grad_norm,
        "tokens_per_sec": tokens_per_sec,
        "step_time": step.step_time,
        "peak_memory_mb": peak_memory_mb(device),
    }
    if peak_flops:
        world_flops = peak_flops * trial.world.size
        train["mfu"] = tokens_per_sec * flops_per_token / world_flops
    if state.window_examples:
        train["train_accuracy"] = state.window_correct / state.window_examples
    train.update(state.window_task_loss_means())  # multitask: train_<task>_loss
    return train


def layer_grad_norms(model: torch.nn.Module) -> dict[str, float]:
    """Gradient norm per top-level block (e.g. transformer.h.3), for spotting a layer that blows up."""
    squares: dict[str, float] = {}
    for name, param in model.named_parameters():
        if param.grad is None:
            continue
        parts = name.split(".")
        key = ".".join(parts[:3]) if len(parts) > 3 and parts[2].isdigit() else ".".join(parts[:2])
        squares[key] = squares.get(key, 0.0) + param.grad.float().pow(2).sum().item()
    return {k: math.sqrt(v) for k, v in squares.items()}
