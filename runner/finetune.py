"""Fine-tuning a pretrained model: layer-wise learning-rate decay and gradual unfreezing.

Both give every parameter a depth, counted from the input:
    0            the embeddings (token and position; a tied output layer shares them)
    1 .. L       transformer block i - 1 (names like transformer.h.3, encoder.layer.3, layers.3)
    L + 1        everything above the blocks: final norm, pooler, classifier or lm head
train.layerwise_lr_decay = d scales depth k's learning rate by d ** (L + 1 - k): the head trains
at the scheduled rate, the top block at d times it, the embeddings at d ** (L + 1) (ELECTRA's
and BEiT's "layer-wise lr decay"). train.unfreeze_every_steps = n trains only the head for the
first n steps, then the head and the top block, and so on down, one more depth every n steps
(ULMFiT's "gradual unfreezing"); the embeddings are unfrozen last, at step n * (L + 1).
"""

from __future__ import annotations

import re

from torch import nn

from runner.errors import ConfigError

# a block's index in a parameter name: GPT-2 transformer.h.3., BERT encoder.layer.3.,
# Llama model.layers.3., T5 block.3.
_BLOCK = re.compile(r"(?:^|\.)(?:h|layer|layers|block|blocks)\.(\d+)\.")
_EMBEDDING = re.compile(r"(?:^|\.)(?:wte|wpe|embeddings?|embed_tokens|embed_positions)\.")


def parameter_depths(model: nn.Module) -> tuple[dict[int, int], int]:
    """({id(param): depth}, number of blocks L) for every parameter of model (see module doc).

    Raises ConfigError when no block is recognised in the parameter names: depth would be
    meaningless, so a layer-wise option cannot apply to this model.
    """
    named = list(model.named_parameters())  # a tied weight once, under its first name
    blocks = [int(m.group(1)) for name, _ in named if (m := _BLOCK.search(name))]
    if not blocks:
        raise ConfigError(
            f"{type(model).__name__}: no transformer blocks found in its parameter names, so "
            "layer-wise options cannot apply (train.layerwise_lr_decay, train.unfreeze_every_steps)"
        )
    num_blocks = max(blocks) + 1
    depths = {}
    for name, param in named:
        if (match := _BLOCK.search(name)) is not None:
            depths[id(param)] = int(match.group(1)) + 1
        elif _EMBEDDING.search(name) is not None:
            depths[id(param)] = 0
        else:
            depths[id(param)] = num_blocks + 1
    return depths, num_blocks


def layerwise_groups(model: nn.Module, groups: list[dict], decay: float) -> list[dict]:
    """Split each optimizer group by parameter depth, each part with lr_scale = decay ** (top - depth).

    The training loop sets a group's lr to the scheduled lr times its lr_scale. decay == 1
    returns the groups unchanged (each with lr_scale 1).
    """
    if decay == 1.0:
        return [{**group, "lr_scale": 1.0} for group in groups]
    depths, num_blocks = parameter_depths(model)
    top = num_blocks + 1
    split: list[dict] = []
    for group in groups:
        by_depth: dict[int, list] = {}
        for param in group["params"]:
            by_depth.setdefault(depths[id(param)], []).append(param)
        for depth in sorted(by_depth, reverse=True):  # head first: a stable, readable order
            split.append(
                {
                    **group,
                    "params": by_depth[depth],
                    "depth": depth,
                    "lr_scale": decay ** (top - depth),
                }
            )
    return split


class GradualUnfreezing:
    """Freezes all but the top depths, one more depth trainable every `every` steps.

    apply(step) is a pure function of the step (so a resumed trial freezes exactly as an
    uninterrupted one); frozen parameters get no gradient, and AdamW/SGD skip a parameter
    without one, so its weights (and weight decay) stay untouched until its depth unfreezes.
    """

    def __init__(self, model: nn.Module, every: int) -> None:
        self.every = every
        self.params = [p for p in model.parameters() if p.requires_grad]
        depths, num_blocks = parameter_depths(model)
        self.top = num_blocks + 1
        self.depths = [depths[id(p)] for p in self.params]
        self.lowest_trainable: int | None = None

    def apply(self, step: int) -> bool:
        """Set requires_grad for `step`; True when what trains changed."""
        lowest = max(self.top - step // self.every, 0)
        if lowest == self.lowest_trainable:
            return False
        self.lowest_trainable = lowest
        for param, depth in zip(self.params, self.depths, strict=True):
            param.requires_grad_(depth >= lowest)
        return True
