"""The trial's own progress: step, data position, best metric, early-stopping patience, and the
unlogged train-metric window."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class TrialState:
    """Everything besides model and optimizer that a checkpoint must carry to resume exactly."""

    greater_is_better: bool = False
    step: int = 0
    micro_index: int = 0  # the data position: batches are a pure function of this counter
    best_value: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    last_eval: dict[str, float] = field(default_factory=dict)
    evals_without_improvement: int = 0
    nonfinite_streak: int = 0
    # the train-metric window since the last logged train record, so that a resumed run logs
    # the very loss an uninterrupted one would at its next logging step
    window_loss: float = 0.0  # sum over the window's finite steps of loss * tokens
    window_tokens: int = 0
    window_seconds: float = 0.0  # wall-clock time of the window up to its last checkpoint

    def reset_window(self) -> None:
        """Start a new train-metric window (after a train record is logged)."""
        self.window_loss, self.window_tokens, self.window_seconds = 0.0, 0, 0.0

    def record_eval(
        self, step: int, metrics: dict[str, float], metric: str, threshold: float
    ) -> bool:
        """Track the best evaluation; True when this one is the new best.

        Like transformers' EarlyStoppingCallback, patience resets only on an improvement larger
        than `threshold`, while any improvement makes a new best checkpoint.
        """
        self.last_eval = dict(metrics)
        value = metrics[metric]
        if not math.isfinite(value):
            self.evals_without_improvement += 1
            return False
        if self.best_value is None:
            gain = math.inf
        else:
            gain = value - self.best_value if self.greater_is_better else self.best_value - value
        self.evals_without_improvement = (
            0 if gain > threshold else self.evals_without_improvement + 1
        )
        if gain > 0:
            self.best_value, self.best_step, self.best_metrics = value, step, dict(metrics)
            return True
        return False

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value)
