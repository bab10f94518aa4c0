"""The learning-rate schedule: linear warmup, then cosine, linear or constant decay."""

from __future__ import annotations

import math

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
    peak = cfg.learning_rate
    warmup = warmup_steps(cfg)
    if step < warmup:
        return peak * (step + 1) / warmup
    floor = peak * cfg.min_lr_ratio
    if cfg.lr_scheduler_type == "constant":
        return peak
    decay_steps = max(1, cfg.max_steps - warmup - 1)
    progress = min(1.0, (step - warmup) / decay_steps)
    if cfg.lr_scheduler_type == "linear":
        return peak - (peak - floor) * progress
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))
