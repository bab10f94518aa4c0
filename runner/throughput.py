"""Throughput figures: tokens per second, peak memory and, on CUDA, model FLOPs utilisation."""

from __future__ import annotations

import resource
import sys

import torch
from torch import nn

# Dense bf16 tensor-core peak in FLOP/s by device name (vendor data sheets, no sparsity).
_PEAK_BF16 = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 125e12,
    "L4": 121e12,
    "4090": 165e12,
    "3090": 71e12,
}


def flops_per_token(model: nn.Module, n_layer: int, n_embd: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N for the weights plus 12*L*d*T for attention (PaLM, app. B)."""
    n_params = sum(p.numel() for p in model.parameters())
    return 6 * n_params + 12 * n_layer * n_embd * seq_len


def peak_flops(device: torch.device) -> float | None:
    """The device's dense bf16 peak, or None when unknown (then no MFU is reported)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in _PEAK_BF16.items() if key in name), None)


def peak_memory_mb(device: torch.device) -> float:
    """Peak allocated CUDA memory, or the process's peak resident set size on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10
