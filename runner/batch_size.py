"""train.auto_find_batch_size: the largest micro-batch, from the configured one down, whose
training step fits in memory; the effective batch stays the same through accumulation.

Each candidate runs one real forward and backward pass on micro-batch 0 (then the gradients
are dropped and the RNG restored, so training itself is unchanged):

- on CUDA, a candidate fits unless it raises torch.cuda.OutOfMemoryError;
- on CPU, nothing runs out of memory politely (the kernel kills the process), so a candidate
  fits when its measured step memory is within train.cpu_memory_budget_mb (0: no budget, no
  search). Step memory = the bytes of the tensors autograd saves for backward during that
  forward pass (measured with torch.autograd.graph.saved_tensors_hooks, each storage counted
  once) + weights + gradients + the optimizer's state (2 fp32 tensors per weight, AdamW's;
  counted for SGD too, to err on the safe side). It is the tensor memory of a step, not the
  process's RSS: the allocator's slack and Python itself come on top.

Halving keeps size * accumulation equal to the configured product: when the size is odd the
next candidate is its largest divisor below half (3 -> 1 with 3x the accumulation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from runner.errors import ConfigError

FP32_BYTES = 4
OPTIMIZER_STATE_COPIES = 2  # AdamW's exp_avg and exp_avg_sq


@dataclasses.dataclass
class BatchChoice:
    """The micro-batch the trial trains with, and what was tried to get there."""

    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    tried: list[dict[str, float | int | bool]]


def next_smaller(size: int) -> int:
    """The largest divisor of size at most size / 2 (size > 1)."""
    return next(d for d in range(size // 2, 0, -1) if size % d == 0)


def saved_activation_bytes(step: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, int]:
    """(loss, bytes of the tensors autograd saved for backward while step() ran its forward)."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = step()
    return loss, sum(storages.values())


def step_memory_mb(model: nn.Module, forward: Callable[[], torch.Tensor]) -> float:
    """Tensor memory of one training step (see the module docstring), in MiB."""
    loss, activations = saved_activation_bytes(forward)
    loss.backward()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    state = trainable * FP32_BYTES * (1 + OPTIMIZER_STATE_COPIES)  # gradients + optimizer state
    return (activations + weights + state) / 2**20


def find_batch_size(
    model: nn.Module,
    device: torch.device,
    batch_size: int,
    accumulation: int,
    budget_mb: float,
    forward_at: Callable[[int], torch.Tensor],
) -> BatchChoice:
    """Try batch_size, then smaller ones, until one fits; forward_at(size) returns the loss of
    micro-batch 0 at that size (autocast included)."""
    tried: list[dict[str, float | int | bool]] = []
    size, total = batch_size, batch_size * accumulation
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if device.type == "cuda" else None
    while True:
        fits, peak = _try(model, device, size, budget_mb, forward_at)
        tried.append({"size": size, "fits": fits, **({"step_memory_mb": peak} if peak else {})})
        if fits or size == 1:
            break
        size = next_smaller(size)
    torch.set_rng_state(rng)
    if cuda_rng is not None:
        torch.cuda.set_rng_state_all(cuda_rng)
    if not fits:
        if device.type == "cuda":
            raise torch.cuda.OutOfMemoryError(
                "train.auto_find_batch_size: even a micro-batch of 1 runs out of CUDA memory"
            )
        raise ConfigError(
            f"train.cpu_memory_budget_mb: even a micro-batch of 1 needs {tried[-1]['step_memory_mb']:.1f} "
            f"MB of tensor memory (measured), more than the budget of {budget_mb} MB; raise it "
            "or make the model smaller"
        )
    return BatchChoice(size, total // size, tried)


def _try(model, device, size, budget_mb, forward_at) -> tuple[bool, float | None]:
    try:
        if device.type == "cuda":
            forward_at(size).backward()
            return True, torch.cuda.max_memory_allocated(device) / 2**20
        peak = step_memory_mb(model, lambda: forward_at(size))
        return peak <= budget_mb, round(peak, 3)
    except torch.cuda.OutOfMemoryError:
        return False, None
    finally:
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
