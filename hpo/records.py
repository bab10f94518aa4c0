"""What a study is and what its trials were: StudySpec, TrialRecord, and the trial states.

The nouns every layer above hpo.space reads: the drivers and hpo.parallel make them,
hpo.study writes them (trials/<n>/trial.json), the trackers and the live view show them, the
study lock and `hpo status` read them. Their own module, low in the stack, so that none of those
readers imports a driver (docs/architecture.md, the layers). The states (TrialState,
END_STATES, FINISHED_STATES) are runner.outcome's, so result.json and trial.json use one word
for one state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.terminal import check_study_name, printable
from runner.errors import UserInputError
from runner.outcome import END_STATES, FINISHED_STATES, TrialState  # the one vocabulary

if TYPE_CHECKING:
    from hpo.space import SearchSpace

# interrupted: Ctrl-C or SIGTERM stopped the search while the trial ran; it saved
# checkpoints/last.pt (when its objective checkpoints) and `--resume` continues it, same params.


@dataclass
class TrialRecord:
    """One trial as written to trials/<n>/trial.json."""

    number: int
    params: dict[str, Any]
    state: TrialState = "running"
    values: list[float] | None = None  # one per objective; the last reported value when pruned
    reason: str | None = None  # why it failed or was pruned
    duration: float = 0.0  # seconds
    steps: int = 0  # the largest step it reported
    started: float = 0.0  # unix time
    resumed_from_step: int | None = None  # --resume continued it from last.pt at this step

    @property
    def value(self) -> float | None:
        return self.values[0] if self.values else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "params": self.params,
            "state": self.state,
            "value": self.value,
            "values": self.values,
            "reason": self.reason,
            "duration": round(self.duration, 3),
            "steps": self.steps,
            "started": self.started,
            "resumed_from_step": self.resumed_from_step,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrialRecord:
        names = (
            "number",
            "params",
            "state",
            "values",
            "reason",
            "duration",
            "steps",
            "started",
            "resumed_from_step",
        )
        return cls(**{name: data[name] for name in names if name in data})


@dataclass(frozen=True)
class StudySpec:
    """How and where a study runs (what it searches, its budget and seed are in SearchSpace)."""

    name: str
    dir: Path  # runs/<name>
    parallel: int = 1  # trials at once on this machine
    resume: bool = False  # continue the study in dir; without it an existing study is an error
    storage: str | None = None  # optuna: None = journal file in dir, "memory", or a database URL
    enqueue: tuple[dict[str, Any], ...] = ()  # params run first (hpo.space.load_enqueue)
    quiet: bool = False  # no live view on stderr
    isolate: bool | None = None  # trials in worker processes; None: only when parallel > 1
    devices: tuple[str | None, ...] = ()  # CUDA_VISIBLE_DEVICES of each worker slot; (): as is

    @classmethod
    def for_space(
        cls, space: SearchSpace, name: str | None = None, runs: str | Path = "runs", **fields: Any
    ) -> StudySpec:
        """A spec named after the space file (or `name`) under the `runs` folder."""
        name = space.name if name is None else name  # --study '' is refused, not ignored
        problem = check_study_name(name)
        if problem:  # a folder, an MLflow tag, a DVC path and a line on the terminal
            raise UserInputError(
                f"study name {printable(repr(name), 120)}: {problem} "
                "(--study; default: the space file's name)"
            )
        if Path(runs).exists() and not Path(runs).is_dir():
            raise UserInputError(f"{runs}: not a folder; --runs names where studies live (--runs)")
        if fields.get("parallel", 1) < 1:
            raise UserInputError(f"--parallel {fields['parallel']}: must be at least 1")
        return cls(name=name, dir=Path(runs) / name, **fields)

    @property
    def in_workers(self) -> bool:
        return self.parallel > 1 if self.isolate is None else self.isolate


__all__ = ["END_STATES", "FINISHED_STATES", "StudySpec", "TrialRecord", "TrialState"]
