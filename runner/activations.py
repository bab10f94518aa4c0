"""Activation statistics per transformer block (train.log_activations), by forward hooks.

Hooks are attached only for the micro-batches of a logging step and removed after it, so a
trial pays for them on 1 step in train.logging_steps (cost: BENCHMARKS.md). Each block's
output hidden states give three numbers: mean, standard deviation and fraction of exact
zeros (dead units after a ReLU-like layer, or a block whose output collapsed).
"""

from __future__ import annotations

import torch
from torch import nn


def transformer_blocks(model: nn.Module) -> list[nn.Module]:
    """The model's repeated blocks: the first ModuleList as long as its hidden-layer count
    (GPT-2's transformer.h, BERT's encoder.layer)."""
    layers = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == layers:
            return list(module)
    return []


class ActivationStats:
    """Attach with `with stats.recording():` around a step's forward passes; read `summary()`."""

    def __init__(self, model: nn.Module) -> None:
        self.blocks = transformer_blocks(model)
        self._sums: dict[int, torch.Tensor] = {}  # per block: [sum, sum of squares, zeros, count]

    def recording(self) -> _Recording:
        return _Recording(self)

    def _hook(self, index: int):
        def record(module, inputs, output) -> None:
            hidden = output[0] if isinstance(output, tuple) else output
            if not isinstance(hidden, torch.Tensor):
                return
            values = hidden.detach().float()
            totals = torch.stack(
                [
                    values.sum(),
                    values.square().sum(),
                    (values == 0).sum().float(),
                    torch.tensor(float(values.numel()), device=values.device),
                ]
            )
            # summed on the device: no host sync inside the forward pass
            self._sums[index] = self._sums[index] + totals if index in self._sums else totals

        return record

    def summary(self) -> dict[str, float]:
        """{'block.I.mean'|'.std'|'.zero_fraction': value} over the recorded micro-batches; resets."""
        record: dict[str, float] = {}
        for index, sums in sorted(self._sums.items()):
            total, squares, zeros, count = sums.tolist()
            mean = total / count
            record[f"block.{index}.mean"] = mean
            record[f"block.{index}.std"] = max(squares / count - mean * mean, 0.0) ** 0.5
            record[f"block.{index}.zero_fraction"] = zeros / count
        self._sums.clear()
        return record


class _Recording:
    def __init__(self, stats: ActivationStats) -> None:
        self.stats, self.handles = stats, []

    def __enter__(self) -> ActivationStats:
        self.handles = [
            block.register_forward_hook(self.stats._hook(i))
            for i, block in enumerate(self.stats.blocks)
        ]
        return self.stats

    def __exit__(self, *exc) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []
