"""What a trial hands back: its status, metrics and checkpoints."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from runner.files import atomic_write_text
from runner.outcome import EndState, read_state


@dataclass
class TrialResult:
    """The outcome of run_trial.

    status: complete (ran its budget or stopped early on no improvement), pruned (a
    Reporter asked it to stop), failed (reason says why: non-finite steps, or a file that could
    not be written, e.g. "no space left on device while writing OUT/checkpoints/last.pt"),
    interrupted (Ctrl-C or SIGTERM; resumable).
    resumed_from_step: the checkpoint step this run resumed from (None: it started fresh).
    batch_size: with train.auto_find_batch_size, the micro-batch size and accumulation it
    trained with and the sizes tried (runner.batch_size); None otherwise.
    """

    status: EndState  # runner.outcome's words for a trial that has ended
    objective: str = "val_loss"
    greater_is_better: bool = False
    best_value: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    final_metrics: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    reason: str | None = None
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    events: dict[str, int] = field(default_factory=dict)
    wall_seconds: float = 0.0
    resumed_from_step: int | None = None
    batch_size: dict | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, allow_nan=False)

    def save(self, path: str | Path) -> None:
        """Write result.json atomically; runner.files.StorageError when it cannot be written."""
        atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def from_dict(cls, data: dict) -> TrialResult:
        """A result as result.json holds it; an older version's status word is read too."""
        return cls(**{**data, "status": read_state(data["status"])})

    @classmethod
    def load(cls, path: str | Path) -> TrialResult:
        return cls.from_dict(json.loads(Path(path).read_text()))
