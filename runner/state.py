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
    window_correct: int = 0  # classify: correctly predicted training examples in the window
    window_examples: int = 0
    # multitask: sum over the window's steps of each task's plain cross-entropy, and the steps
    window_task_loss: dict[str, float] = field(default_factory=dict)
    window_task_steps: int = 0
    # the current epoch's totals, for its summary record (epoch: micro-batches // per epoch)
    epoch: int = 0
    epoch_loss: float = 0.0  # sum of loss * tokens over the epoch's finite steps
    epoch_tokens: int = 0
    epoch_correct: int = 0
    epoch_examples: int = 0
    epoch_steps: int = 0

    def reset_window(self) -> None:
        """Start a new train-metric window (after a train record is logged)."""
        self.window_loss, self.window_tokens, self.window_seconds = 0.0, 0, 0.0
        self.window_correct = self.window_examples = 0
        self.window_task_loss, self.window_task_steps = {}, 0

    def add_task_losses(self, losses: dict[str, float]) -> None:
        """One step's cross-entropy of each task (multitask), into the train-metric window."""
        for task, value in losses.items():
            self.window_task_loss[task] = self.window_task_loss.get(task, 0.0) + value
        self.window_task_steps += 1

    def window_task_loss_means(self) -> dict[str, float]:
        """train_<task>_loss: each task's mean cross-entropy over the window's steps ({} if none)."""
        steps = max(self.window_task_steps, 1)
        return {
            f"train_{task}_loss": total / steps for task, total in self.window_task_loss.items()
        }

    def end_epoch(self) -> dict[str, float | int]:
        """The summary of the epoch that just ended; starts the next one."""
        summary: dict[str, float | int] = {
            "epoch": self.epoch + 1,
            "steps": self.epoch_steps,
            "loss": self.epoch_loss / max(self.epoch_tokens, 1),
        }
        if self.epoch_examples:
            summary["train_accuracy"] = self.epoch_correct / self.epoch_examples
        self.epoch += 1
        self.epoch_loss, self.epoch_tokens, self.epoch_steps = 0.0, 0, 0
        self.epoch_correct = self.epoch_examples = 0
        return summary

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
