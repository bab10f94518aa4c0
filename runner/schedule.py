"""The learning-rate schedule: linear warmup, then cosine, linear or constant decay.

The shapes are transformers' own (transformers.get_scheduler, as HF Trainer uses them):
- cosine:   "cosine_with_min_lr"     (min_lr_rate = min_lr_ratio)
- linear:   "polynomial", power 1    (lr_end = min_lr_ratio; "linear" itself decays to 0)
- constant: "constant_with_warmup"   (min_lr_ratio does not apply)
A linear decay to a floor of 1.0 is no decay: it is "constant_with_warmup".

This project's semantics differ from HF's by one step at each end, on purpose: step 0 trains at
learning_rate/warmup, never at 0, and the decay reaches learning_rate * min_lr_ratio at the
last step (max_steps - 1), not one step after it. Both come from the index lr_at passes to
HF's schedule: step + 1 during warmup, the step itself after it (at most the schedule's end),
and a schedule length of max_steps - 1 (at least warmup + 1, so that HF never divides by zero).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from runner.config import TrainConfig


def warmup_steps(cfg: TrainConfig) -> int:
    """Warmup length: warmup_steps when set, else warmup_ratio of max_steps (as in HF Trainer)."""
    if cfg.warmup_steps > 0:
        return min(cfg.warmup_steps, cfg.max_steps)
    return math.ceil(cfg.warmup_ratio * cfg.max_steps)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): a pure function, so resume needs only the step.

    Warmup rises linearly from learning_rate/warmup to learning_rate (step 0 never trains at 0).
    Decay then falls from learning_rate to learning_rate * min_lr_ratio at the last step.
    """
    warmup = warmup_steps(cfg)
    total = _schedule_length(warmup, cfg.max_steps)
    factor = _hf_factor(cfg.lr_scheduler_type, warmup, total, cfg.min_lr_ratio)
    # past the end of the schedule: its floor (HF's cosine would rise again)
    return cfg.learning_rate * factor(step + 1 if step < warmup else min(step, total))


def _schedule_length(warmup: int, max_steps: int) -> int:
    """HF's num_training_steps: the floor is reached at step max_steps - 1 (at least one step
    after the warmup, so that HF never divides by zero)."""
    return max(max_steps - 1, warmup + 1)


@functools.lru_cache(maxsize=32)
def _hf_factor(kind: str, warmup: int, total: int, min_ratio: float) -> Callable[[int], float]:
    """HF's multiplier of the peak for a step index (the LambdaLR's lr_lambda), built once."""
    import torch
    from transformers import get_scheduler

    extra: dict = {}
    if kind == "cosine":
        name, extra = "cosine_with_min_lr", {"min_lr_rate": min_ratio}
    elif kind == "linear" and min_ratio < 1.0:
        # lr_end is relative to the optimizer's lr, which is 1.0 here: the factor itself
        name, extra = "polynomial", {"lr_end": min_ratio, "power": 1.0}
    else:  # constant, or a linear decay to 100% of the peak
        name = "constant_with_warmup"
    # a throwaway optimizer at lr 1.0: get_scheduler needs one; only its lr_lambda is kept
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = get_scheduler(
        name,
        optimizer,
        num_warmup_steps=warmup,
        num_training_steps=total,
        scheduler_specific_kwargs=extra,
    )
    return scheduler.lr_lambdas[0]
