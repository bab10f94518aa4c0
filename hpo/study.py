"""The outputs of a study, the same for every driver, and reading them back.

A study's rooms: this module (what a run of a study starts from and ends with: study.yaml, the
trials of an earlier run, summary.json, history.csv), hpo.study_ranking (the best trial, the
Pareto front), hpo.study_status (what `hpo status` and `hpo best` read), hpo.study_files (one
file at a time: trial.json, study.yaml, summary.json, written and read back checked) and
hpo.study_best (best/, promoted atomically). The names other modules import from hpo.study are
re-exported here.

    runs/<study>/
        study.yaml          the resolved space, driver options and how the study runs
        trials/<n>/         trial.json (number, params, state, value, reason, duration, steps);
                            the objective writes the rest (config.yaml, metrics.jsonl, checkpoints/)
        best/               the best trial's best checkpoint, config.yaml, result.json
        best_params.yaml    the best params, nested by their dotted keys (DVC reads it)
        summary.json        best value and params, counts by state, total steps, wall time, method

Every file is written atomically and durably through runner.files (temporary file, fsync,
rename): a kill -9 or a power cut leaves the previous version or the new one, never half of
one. best/ is built beside the old one (best.tmp-PID/) and swapped in by one rename (see
promote_best), so a disk that fills up, or a kill -9, leaves the old best/ or the new one.
A write that fails (disk full, read-only) raises runner.files.StorageError: one line naming
the file. trials/<n>/trial.json is the record of the study: summaries and `hpo status` are
computed from those files. A study file that is empty or damaged (study.yaml, a trial.json,
summary.json) is refused with StudyFileError, "PATH: what is wrong", never a traceback.

Only one process writes a study folder at a time: `hpo search` holds hpo.study_lock,
`hpo worker` its folder lock.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hpo.methods import search_method
from hpo.records import END_STATES, StudySpec, TrialRecord
from hpo.space import Objective, SearchSpace
from hpo.study_best import promote_best, recover_best
from hpo.study_files import (
    StudyFileError,
    load_settings,
    load_trials,
    read_summary,
    trial_dir,
    write_json,
    write_trial,
)
from hpo.study_ranking import best_trial, pareto_front
from hpo.study_status import StudyStatus, read_study
from runner.errors import UserInputError
from runner.files import StorageError, atomic_write_text

INTERRUPTED = "interrupted: the search stopped while this trial ran"


@dataclass(frozen=True)
class StudyResult:
    """Every trial of a study (earlier runs included) and the best one."""

    study: str
    driver: str
    dir: Path
    objectives: tuple[Objective, ...]
    trials: tuple[TrialRecord, ...]  # by number
    best: TrialRecord | None
    pareto_front: tuple[int, ...]  # trial numbers; several objectives only
    wall_seconds: float
    stop_reason: str  # budget | timeout | exhausted | failures | interrupted | storage
    method: dict[str, Any] | None = None  # sampler, pruner, settings: hpo.methods

    def count(self, state: str) -> int:
        return sum(1 for t in self.trials if t.state == state)

    @property
    def first_failure(self) -> str | None:
        """The reason of the first failed trial (what to show when every trial failed)."""
        return next((t.reason for t in self.trials if t.state == "failed"), None)

    def summary(self) -> dict[str, Any]:
        """The content of summary.json."""
        best = self.best
        return {
            "study": self.study,
            "driver": self.driver,
            "method": self.method,
            "objective": vars(self.objectives[0]),
            "objectives": [vars(o) for o in self.objectives],
            "best_value": best.value if best else None,
            "best_values": best.values if best else None,
            "best_params": best.params if best else None,
            "best_trial": best.number if best else None,
            "pareto_front": list(self.pareto_front),
            "n_trials": {s: self.count(s) for s in END_STATES},
            "total_steps": sum(t.steps for t in self.trials),
            "wall_seconds": round(self.wall_seconds, 3),
            "stop_reason": self.stop_reason,
            "first_failure": self.first_failure,
        }


def previous_trials(study: StudySpec, space: SearchSpace) -> list[TrialRecord]:
    """The trials of an earlier run to resume, checking first that resuming is what was asked."""
    settings = study.dir / "study.yaml"
    if not settings.exists():
        return []
    if not study.resume:
        raise UserInputError(
            f"study '{study.name}' already exists in {study.dir}; pass --resume to continue it "
            "or --study NAME to start another"
        )
    before = load_settings(study.dir)["space"]
    read_summary(study.dir)  # damaged: refused now, not after the trials have run
    recover_best(study.dir)
    now = space.to_dict()
    for key in ("params", "objective"):
        if before.get(key) != now[key]:
            raise UserInputError(
                f"{space.source}: {key} differ from those of study '{study.name}' in {settings}; "
                "resume with the same space or start another study with --study NAME"
            )
    return load_trials(study.dir)


def open_study(
    study: StudySpec, space: SearchSpace, driver: str, previous: Sequence[TrialRecord]
) -> list[TrialRecord]:
    """Write study.yaml and mark trials an earlier run left running (kill -9) interrupted.

    Interrupted trials are continued from their last.pt by hpo.parallel.run_study (or Ray).
    """
    study.dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "study": study.name,
        "driver": driver,
        "space": space.to_dict(),
        "parallel": study.parallel,
        "storage": study.storage,
        "trials_in_workers": study.in_workers,
        "enqueue": list(study.enqueue),
    }
    atomic_write_text(study.dir / "study.yaml", yaml.safe_dump(settings, sort_keys=False))
    records = list(previous)
    for record in records:
        if record.state == "running":
            record.state, record.reason = "interrupted", INTERRUPTED
            write_trial(study.dir, record)
    return records


def finish_study(
    study: StudySpec,
    space: SearchSpace,
    driver: str,
    wall_seconds: float,
    stop_reason: str,
    *,
    resumed: bool = False,
) -> StudyResult:
    """Write best_params.yaml, best/, summary.json and history.csv from the trials on disk.

    resumed: the study had trials before this run (their wall time is in summary.json, and is
    added); False (a new study) leaves any summary.json found out of it.
    Each is attempted even when an earlier one failed (a full disk may still take summary.json
    when it cannot take a checkpoint); then the first StorageError is raised.
    """
    records = load_trials(study.dir)
    # a resumed study (trials on disk before this run) adds the wall time of its earlier runs;
    # a summary.json without them (DVC keeps the search stage's, and a fresh clone has no
    # trials) belongs to no run of this study
    if resumed:
        try:
            wall_seconds += (read_summary(study.dir) or {}).get("wall_seconds", 0.0)
        except StudyFileError as err:  # checked at --resume: damaged since; it is rewritten
            _say(f"hpo: warning: {err}; the wall time of earlier runs is lost")
    best = best_trial(records, space.objectives)
    result = StudyResult(
        study=study.name,
        driver=driver,
        dir=study.dir,
        objectives=space.objectives,
        trials=tuple(records),
        best=best,
        pareto_front=tuple(pareto_front(records, space.objectives)),
        wall_seconds=wall_seconds,
        stop_reason=stop_reason,
        method=search_method(space, study),
    )
    failures: list[StorageError] = []

    def attempt(write: Any, *args: Any) -> None:
        try:
            write(*args)
        except StorageError as err:
            failures.append(err)

    if best is not None:
        nested = yaml.safe_dump(_nest(best.params), sort_keys=False)
        attempt(atomic_write_text, study.dir / "best_params.yaml", nested)
        attempt(promote_best, study.dir, best.number)
    attempt(write_json, study.dir / "summary.json", result.summary())
    attempt(write_history, study.dir, records, space.objectives[0])
    if failures:
        raise failures[0]
    return result


def write_history(study_dir: Path, records: Sequence[TrialRecord], objective: Objective) -> None:
    """history.csv: trial, state, value and best so far, the optimization history for `dvc plots`."""
    lines = ["trial,state,value,best_so_far"]
    best: float | None = None
    for record in records:
        value = record.value if record.state == "complete" else None
        if value is not None and (best is None or objective.is_better(value, best)):
            best = value
        lines.append(
            f"{record.number},{record.state},{'' if value is None else value},"
            f"{'' if best is None else best}"
        )
    atomic_write_text(study_dir / "history.csv", "\n".join(lines) + "\n")


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _say(line: str) -> None:
    from hpo.terminal import printable

    # param values and reasons come from the user's files: never let them drive the terminal
    print(printable(line, limit=None), file=sys.stderr, flush=True)


__all__ = [  # this module's names, and those of its other rooms that others import here
    "INTERRUPTED",
    "StudyFileError",
    "StudyResult",
    "StudyStatus",
    "atomic_write_text",
    "best_trial",
    "finish_study",
    "load_trials",
    "open_study",
    "pareto_front",
    "previous_trials",
    "promote_best",
    "read_study",
    "recover_best",
    "trial_dir",
    "write_history",
    "write_json",
    "write_trial",
]
