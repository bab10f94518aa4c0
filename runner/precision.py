"""Device and mixed-precision choice: which autocast dtype, and whether a GradScaler is needed."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from runner.config import TrainConfig
from runner.errors import ConfigError

log_to_console = logging.getLogger("runner")


@dataclass(frozen=True)
class Precision:
    """How the forward pass runs: autocast dtype (None: fp32) and GradScaler on or off."""

    name: str
    device: torch.device
    autocast_dtype: torch.dtype | None
    use_grad_scaler: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def resolve_device(cfg: TrainConfig) -> torch.device:
    """`auto` is the first CUDA device when there is one, else the CPU."""
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {cfg.device} asked for but no CUDA device is available")
    return device


def resolve_precision(cfg: TrainConfig, device: torch.device) -> Precision:
    """Map train.precision to autocast settings on this device.

    auto: bf16 on CUDA that supports it, fp16 with GradScaler on older CUDA, fp32 on CPU
    (bf16 autocast is supported on CPU and can be asked for explicitly, but on CPUs without
    AMX it runs slower than fp32 for small models: see BENCHMARKS.md). fp16 on CPU runs
    (torch autocast with float16 and GradScaler("cpu")) with a warning: it exists so that the
    GradScaler paths, skip-on-overflow and unscale-before-clip, run in the test suite on a
    machine without a GPU; it is slower than fp32 there and not meant for real training.
    """
    cuda = device.type == "cuda"
    bf16_ok = not cuda or torch.cuda.is_bf16_supported()
    name = cfg.precision
    if name == "auto":
        name = ("bf16" if bf16_ok else "fp16") if cuda else "fp32"
    if name == "bf16" and not bf16_ok:
        raise ConfigError("train.precision: bf16 is not supported on this GPU; use fp16 or auto")
    if name == "fp16" and not cuda:
        log_to_console.warning(
            "train.precision=fp16 on CPU is for testing the GradScaler paths; use fp32 or bf16"
        )
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[name]
    return Precision(name, device, dtype, use_grad_scaler=name == "fp16")


def enable_fast_matmul(device: torch.device) -> None:
    """TF32 matmuls on CUDA: free speed on Ampere and later at no accuracy cost for training."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def unscale_and_clip(
    scaler: torch.amp.GradScaler,
    optimizer: torch.optim.Optimizer,
    params: Sequence[torch.Tensor],
    max_grad_norm: float,
) -> torch.Tensor:
    """The true (unscaled) global gradient norm, after clipping the gradients to max_grad_norm.

    Unscaling first makes max_grad_norm mean the same with fp16's loss scaling as without; an
    overflow leaves an inf/nan norm here, and scaler.step then skips the step on its own.
    """
    scaler.unscale_(optimizer)
    return torch.nn.utils.clip_grad_norm_(params, max_grad_norm or math.inf)
