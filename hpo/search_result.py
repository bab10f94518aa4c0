"""What a search returns: SearchResult, the study's trials and its best, read as the study's
files say (what `hpo best` and `hpo status --json` read), and check_outcome, which says that a
search where every trial failed failed (SearchFailed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import SearchFailed

if TYPE_CHECKING:
    import pandas

    from hpo.drivers.base import TrialRecord
    from hpo.space import Objective
    from hpo.study import StudyResult


@dataclass(frozen=True)
class SearchResult:
    """What a search found: every trial of the study (earlier runs included) and the best.

    The values are those of the study's files, which `hpo best` and `hpo status --json` read.
    """

    study: str
    dir: Path  # runs/<study>
    driver: str
    objectives: tuple[Objective, ...]
    trials: list[TrialRecord]  # by number; each: number, params, state, value(s), reason, ...
    best_trial: TrialRecord | None  # the complete trial best on the (first) objective
    stop_reason: str  # budget | timeout | exhausted | failures | interrupted | storage
    wall_seconds: float
    counts: dict[str, int] = field(default_factory=dict)  # trials by state

    @classmethod
    def from_study(cls, result: StudyResult) -> SearchResult:
        from hpo.records import END_STATES

        return cls(
            study=result.study,
            dir=Path(result.dir),
            driver=result.driver,
            objectives=result.objectives,
            trials=list(result.trials),
            best_trial=result.best,
            stop_reason=result.stop_reason,
            wall_seconds=result.wall_seconds,
            counts={state: result.count(state) for state in END_STATES},
        )

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The best trial's params by dotted key; None when no trial completed."""
        return None if self.best_trial is None else dict(self.best_trial.params)

    @property
    def best_value(self) -> float | None:
        """The best trial's value of the (first) objective metric."""
        return None if self.best_trial is None else self.best_trial.value

    @property
    def best_values(self) -> list[float] | None:
        """The best trial's value of each objective, in the space's order."""
        return None if self.best_trial is None else list(self.best_trial.values or [])

    @property
    def best_checkpoint(self) -> Path | None:
        """The best trial's promoted checkpoint, runs/<study>/best/best.pt (or another best*
        entry the trial wrote under checkpoints/); None when there is none (a function objective
        that saved nothing, or no complete trial)."""
        best = self.dir / "best"
        if self.best_trial is None or not best.is_dir():
            return None
        if (best / "best.pt").exists():
            return best / "best.pt"
        return next(iter(sorted(best.glob("best*"))), None)

    def count(self, state: str) -> int:
        """Trials in `state` (complete, pruned, failed, interrupted)."""
        return self.counts.get(state, 0)

    @property
    def interrupted(self) -> bool:
        return self.stop_reason == "interrupted"

    def trials_dataframe(self) -> pandas.DataFrame:
        """The trials as a pandas DataFrame, one row each, in the columns of Optuna's
        Study.trials_dataframe(): number, value (values_0, values_1... for several objectives),
        datetime_start, datetime_complete, duration, params_<key>..., state; then steps and
        reason. state is hpo's: complete, pruned, failed, interrupted or running.
        """
        try:
            import pandas  # installed with mlflow and optuna's extras; not hpo's own dependency
        except ImportError:
            raise ImportError(
                "trials_dataframe() needs pandas (pip install pandas); result.trials holds the "
                "same records"
            ) from None

        rows = []
        keys = list(dict.fromkeys(k for t in self.trials for k in t.params))
        for t in self.trials:
            row: dict[str, Any] = {"number": t.number}
            if len(self.objectives) == 1:
                row["value"] = t.value
            else:
                for i in range(len(self.objectives)):
                    row[f"values_{i}"] = t.values[i] if t.values and i < len(t.values) else None
            start = pandas.Timestamp(t.started, unit="s") if t.started else pandas.NaT
            row["datetime_start"] = start
            row["datetime_complete"] = (
                start + pandas.Timedelta(seconds=t.duration)
                if t.started and t.state != "running"
                else pandas.NaT
            )
            row["duration"] = pandas.Timedelta(seconds=t.duration)
            for key in keys:
                row[f"params_{key}"] = t.params.get(key)
            row.update(state=t.state, steps=t.steps, reason=t.reason)
            rows.append(row)
        return pandas.DataFrame(rows)


def check_outcome(result: SearchResult) -> None:
    """SearchFailed when no trial completed or was pruned (each failed, or none ran)."""
    if result.counts.get("complete", 0) == 0 and result.counts.get("pruned", 0) == 0:
        first = next((t.reason for t in result.trials if t.state == "failed"), None)
        raise SearchFailed(f"every trial failed; the first: {first or 'no trial ran'}", result)
