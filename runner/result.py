"""What a trial hands back: its status, metrics and checkpoints."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Status = Literal["completed", "pruned", "failed", "interrupted"]


@dataclass
class TrialResult:
    """The outcome of run_trial.

    status: completed (ran its budget or stopped early on no improvement), pruned (a
    Reporter asked it to stop), failed (reason says why), interrupted (Ctrl-C; resumable).
    """

    status: Status
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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, allow_nan=False)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TrialResult:
        return cls(**json.loads(Path(path).read_text()))
