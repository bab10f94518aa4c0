"""The outputs of a study, the same for every driver, and reading them back.

    runs/<study>/
        study.yaml          the resolved space, driver options and how the study runs
        trials/<n>/         trial.json (number, params, state, value, reason, duration, steps);
                            the objective writes the rest (config.yaml, metrics.jsonl, checkpoints/)
        best/               the best trial's best checkpoint, config.yaml, result.json
        best_params.yaml    the best params, nested by their dotted keys (DVC reads it)
        summary.json        best value and params, counts by state, total steps, wall time

Every file is written atomically (temporary file, then rename): a kill -9 leaves the previous
version or the new one, never half of one. trials/<n>/trial.json is the record of the study:
summaries and `hpo status` are computed from those files.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hpo.drivers.base import FINISHED_STATES, StudySpec, TrialRecord
from hpo.space import Objective, SearchSpace
from runner.errors import UserInputError

INTERRUPTED = "interrupted: the search stopped while this trial ran"
# trial states summary.json and `hpo status` count
COUNTED_STATES = ("complete", "pruned", "failed", "interrupted")


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
    stop_reason: str  # budget | timeout | exhausted | failures | interrupted

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
            "objective": vars(self.objectives[0]),
            "objectives": [vars(o) for o in self.objectives],
            "best_value": best.value if best else None,
            "best_values": best.values if best else None,
            "best_params": best.params if best else None,
            "best_trial": best.number if best else None,
            "pareto_front": list(self.pareto_front),
            "n_trials": {s: self.count(s) for s in COUNTED_STATES},
            "total_steps": sum(t.steps for t in self.trials),
            "wall_seconds": round(self.wall_seconds, 3),
            "stop_reason": self.stop_reason,
            "first_failure": self.first_failure,
        }


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so that readers (and a kill -9) see the old content or the new, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def trial_dir(study_dir: Path, number: int) -> Path:
    return study_dir / "trials" / str(number)


def write_trial(study_dir: Path, record: TrialRecord) -> None:
    path = trial_dir(study_dir, record.number)
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / "trial.json", record.to_dict())


def load_trials(study_dir: Path) -> list[TrialRecord]:
    """Every trial.json of the study, by number (trials without one are skipped)."""
    records = []
    for path in (study_dir / "trials").glob("*/trial.json"):
        records.append(TrialRecord.from_dict(json.loads(path.read_text())))
    return sorted(records, key=lambda r: r.number)


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
    before = yaml.safe_load(settings.read_text()).get("space", {})
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


def best_trial(
    records: Sequence[TrialRecord], objectives: Sequence[Objective]
) -> TrialRecord | None:
    """The complete trial best on the first objective (among the Pareto front when several)."""
    candidates = [r for r in records if r.state == "complete" and r.values]
    if len(objectives) > 1:
        front = set(pareto_front(records, objectives))
        candidates = [r for r in candidates if r.number in front]
    best = None
    for record in candidates:
        if best is None or objectives[0].is_better(record.values[0], best.values[0]):
            best = record
    return best


def pareto_front(records: Sequence[TrialRecord], objectives: Sequence[Objective]) -> list[int]:
    """Numbers of the complete trials no other complete trial dominates."""
    if len(objectives) < 2:
        return []
    signs = [1.0 if o.direction == "minimize" else -1.0 for o in objectives]
    points = {
        r.number: [s * v for s, v in zip(signs, r.values, strict=True)]
        for r in records
        if r.state == "complete" and r.values
    }

    def dominated(p: list[float]) -> bool:
        return any(
            all(a <= b for a, b in zip(q, p, strict=True)) and q != p for q in points.values()
        )

    return [number for number, p in points.items() if not dominated(p)]


def finish_study(
    study: StudySpec, space: SearchSpace, driver: str, wall_seconds: float, stop_reason: str
) -> StudyResult:
    """Write best_params.yaml, summary.json and best/ from the trials on disk."""
    records = load_trials(study.dir)
    summary_path = study.dir / "summary.json"
    if summary_path.exists() and records:  # a resumed study: add the wall time of earlier runs
        wall_seconds += json.loads(summary_path.read_text()).get("wall_seconds", 0.0)
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
    )
    if best is not None:
        nested = _nest(best.params)
        atomic_write_text(study.dir / "best_params.yaml", yaml.safe_dump(nested, sort_keys=False))
        promote_best(study.dir, best.number)
    write_json(summary_path, result.summary())
    write_history(study.dir, records, space.objectives[0])
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


def promote_best(study_dir: Path, best_trial_number: int) -> Path:
    """Copy the winner's best checkpoint(s), config.yaml, result.json and trial.json into best/."""
    source = trial_dir(study_dir, best_trial_number)
    target = study_dir / "best"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    wanted = [
        source / name for name in ("config.yaml", "result.json", "metrics.jsonl", "trial.json")
    ]
    wanted += sorted((source / "checkpoints").glob("best*"))
    for path in wanted:
        if path.is_dir():
            shutil.copytree(path, target / path.name)
        elif path.is_file():
            shutil.copy2(path, target / path.name)
    return target


@dataclass(frozen=True)
class StudyStatus:
    """What `hpo status` and `hpo best` print."""

    study: str
    driver: str | None
    counts: dict[str, int]  # running, complete, pruned, failed
    best: TrialRecord | None
    summary: dict[str, Any] | None  # summary.json, once a run of the study has ended


def read_study(study_dir: str | Path) -> StudyStatus:
    """Counts by state and the best trial, from the files (also while the study runs)."""
    study_dir = Path(study_dir)
    settings_path = study_dir / "study.yaml"
    if not settings_path.is_file():
        raise UserInputError(f"{study_dir}: no study here (study.yaml not found)")
    settings = yaml.safe_load(settings_path.read_text())
    raw = settings["space"]["objective"]
    objectives = [Objective(**o) for o in (raw if isinstance(raw, list) else [raw])]
    records = load_trials(study_dir)
    counts = {s: sum(1 for r in records if r.state == s) for s in ("running", *COUNTED_STATES)}
    summary_path = study_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else None
    return StudyStatus(
        settings["study"], settings.get("driver"), counts, best_trial(records, objectives), summary
    )


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


class LiveView:
    """The live view on stderr: a line per finished trial with the best so far and an ETA."""

    def __init__(self, space: SearchSpace, previous: Sequence[TrialRecord]) -> None:
        self.space = space
        self.finished = sum(1 for r in previous if r.state in FINISHED_STATES)
        self.best = best_trial(previous, space.objectives)
        self.started = time.monotonic()
        self.finished_now = 0

    def start_study(self, space: SearchSpace, study: StudySpec, driver: str) -> None:
        budget = space.budget
        limits = [
            f"{budget.trials} trials" if budget.trials else "",
            f"{budget.timeout:g} s" if budget.timeout else "",
        ]
        _say(
            f"study {study.name}: {driver} {dict(space.driver_options)}, "
            f"{' / '.join(x for x in limits if x)}, {study.parallel} at once -> {study.dir}"
        )

    def start_trial(self, number: int, params: Any) -> None:
        pass

    def log_metrics(self, number: int, step: int, metrics: Any) -> None:
        pass

    def end_trial(self, record: TrialRecord) -> None:
        if record.state in FINISHED_STATES:
            self.finished += 1
            self.finished_now += 1
        self.best = best_trial([r for r in (self.best, record) if r], self.space.objectives)
        metric = self.space.objective.metric
        value = "" if record.value is None else f"{metric}={record.value:.5g}"
        best = f"best {self.best.value:.5g} (#{self.best.number})" if self.best else "no best yet"
        why = f" ({record.reason[:100]})" if record.state == "failed" and record.reason else ""
        params = " ".join(f"{k.rsplit('.', 1)[-1]}={_short(v)}" for k, v in record.params.items())
        _say(
            f"trial {record.number:>3} {record.state:<8} {value:<18} {best}  "
            f"[{self._progress()}]  {params}{why}"
        )

    def end_study(self, result: StudyResult) -> None:
        counts = ", ".join(
            f"{result.count(s)} {s}"
            for s in COUNTED_STATES
            if s != "interrupted" or result.count(s)
        )
        best = result.best
        found = f"best trial {best.number}: {best.value:.5g}" if best else "no complete trial"
        _say(
            f"study {result.study} ended ({result.stop_reason}): {counts}; {found}; "
            f"{result.dir / 'summary.json'}"
        )

    def _progress(self) -> str:
        trials = self.space.budget.trials
        done = f"{self.finished}/{trials}" if trials else f"{self.finished} done"
        if not trials or not self.finished_now:
            return done
        per_trial = (time.monotonic() - self.started) / self.finished_now
        eta = max(0.0, per_trial * (trials - self.finished))
        return f"{done}, ETA {int(eta // 60)}m{int(eta % 60):02d}s"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
