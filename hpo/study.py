"""The outputs of a study, the same for every driver, and reading them back.

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

import ctypes
import errno
import json
import os
import shutil
import sys
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hpo.methods import search_method
from hpo.records import END_STATES, StudySpec, TrialRecord, TrialState
from hpo.space import Objective, SearchSpace
from runner.errors import ConfigError, UserInputError
from runner.files import (
    StorageError,
    atomic_write_json,
    atomic_write_text,
    fsync_dir,
    storage_error,
)
from runner.yaml_io import excerpt, load_yaml_file

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


# The names the drivers and trackers import from here (bo_driver, mlflow_tracker): the writers
# of runner.files, atomic and fsync'd.
write_json = atomic_write_json


class StudyFileError(UserInputError):
    """A study file is empty or damaged: "PATH: what is wrong" (and what to do about it)."""


def trial_dir(study_dir: Path, number: int) -> Path:
    return study_dir / "trials" / str(number)


def write_trial(study_dir: Path, record: TrialRecord) -> None:
    write_json(trial_dir(study_dir, record.number) / "trial.json", record.to_dict())


def read_json_file(path: Path) -> dict[str, Any]:
    """A study's JSON file as a dict; StudyFileError naming it when it is empty or damaged."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise StudyFileError(f"{path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise StudyFileError(f"{path}: damaged: not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise StudyFileError(f"{path}: empty (a write cut short by a crash or a full disk)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise StudyFileError(
            f"{path}: damaged: not valid JSON ({err.msg} at line {err.lineno})"
        ) from None
    if not isinstance(data, dict):
        raise StudyFileError(
            f"{path}: damaged: a JSON object expected, found {type(data).__name__}"
        )
    return data


KNOWN_STATES = set(typing.get_args(TrialState))  # a trial.json that says another is damaged
_TRIAL_FIELDS = {  # what a trial.json must hold, and of which type
    "number": int,
    "params": dict,
    "state": str,
    "values": (list, type(None)),
    "reason": (str, type(None)),
    "duration": (int, float),
    "steps": int,
    "started": (int, float),
}


def load_trial(path: Path) -> TrialRecord:
    """One trials/<n>/trial.json; StudyFileError naming it when it is empty or damaged."""
    drop = f"; fix it, or remove {path.parent} to drop the trial"
    try:
        data = read_json_file(path)
    except StudyFileError as err:
        raise StudyFileError(f"{err}{drop}") from None
    for key, kind in _TRIAL_FIELDS.items():
        if key in ("number", "params", "state") and key not in data:
            raise StudyFileError(f"{path}: damaged: no '{key}'{drop}")
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            raise StudyFileError(f"{path}: damaged: '{key}' is {excerpt(data[key])}{drop}")
    if data["state"] not in KNOWN_STATES:
        raise StudyFileError(f"{path}: damaged: unknown state {excerpt(data['state'])}{drop}")
    values = data.get("values") or []
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise StudyFileError(f"{path}: damaged: 'values' is {excerpt(values)}{drop}")
    return TrialRecord.from_dict(data)


def load_trials(study_dir: Path) -> list[TrialRecord]:
    """Every trial.json of the study, by number (trials without one are skipped)."""
    records = [load_trial(path) for path in (study_dir / "trials").glob("*/trial.json")]
    return sorted(records, key=lambda r: r.number)


def load_settings(study_dir: Path) -> dict[str, Any]:
    """study.yaml, checked enough to be used: StudyFileError "PATH: what is wrong" otherwise."""
    path = study_dir / "study.yaml"
    try:
        settings = load_yaml_file(path, "study file")
    except ConfigError as err:
        raise StudyFileError(str(err)) from None
    if settings is None:
        raise StudyFileError(f"{path}: empty (a write cut short by a crash or a full disk)")
    if not isinstance(settings, dict):
        raise StudyFileError(f"{path}: damaged: a mapping expected")
    space = settings.get("space")
    if not isinstance(settings.get("study"), str):
        raise StudyFileError(f"{path}: damaged: no study name (study)")
    if not isinstance(space, dict) or not isinstance(space.get("params"), dict):
        raise StudyFileError(f"{path}: damaged: no search space (space.params)")
    settings_objectives(settings, path)
    return settings


def settings_objectives(settings: dict[str, Any], path: Path) -> list[Objective]:
    """The objectives study.yaml names (space.objective: one, or a list)."""
    raw = settings["space"].get("objective")
    try:
        return [Objective(**o) for o in (raw if isinstance(raw, list) else [raw])]
    except (TypeError, ValueError) as err:
        raise StudyFileError(
            f"{path}: damaged: space.objective is {excerpt(raw)} ({err})"
        ) from None


def read_summary(study_dir: Path) -> dict[str, Any] | None:
    """summary.json (None before a run of the study has ended); StudyFileError when damaged."""
    path = study_dir / "summary.json"
    if not path.is_file():
        return None
    summary = read_json_file(path)
    if not isinstance(summary.get("wall_seconds", 0.0), int | float):
        raise StudyFileError(f"{path}: damaged: wall_seconds is {excerpt(summary['wall_seconds'])}")
    return summary


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
    """Write best_params.yaml, best/, summary.json and history.csv from the trials on disk.

    Each is attempted even when an earlier one failed (a full disk may still take summary.json
    when it cannot take a checkpoint); then the first StorageError is raised.
    """
    records = load_trials(study.dir)
    if records:  # a resumed study: add the wall time of earlier runs
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


# config.yaml ... of a runner trial; command.json and reports.jsonl of a command trial
BEST_FILES = (
    "config.yaml",
    "result.json",
    "metrics.jsonl",
    "trial.json",
    "command.json",
    "reports.jsonl",
)


def promote_best(study_dir: Path, best_trial_number: int) -> Path:
    """Copy the winner's best checkpoint(s), config.yaml, result.json and trial.json into best/.

    The new best/ is built and fsync'd beside the old one (best.tmp-PID/), then the two are
    exchanged in one atomic rename (renameat2 RENAME_EXCHANGE; where the filesystem has none:
    old to best.old-PID/, new into place, and recover_best puts the old one back if a kill
    came between the two). The old best/ is removed last: a full disk, an I/O error or a kill
    -9 at any moment leaves a complete best/, the old or the new. Raises StorageError, naming
    the file in best/ that could not be written.
    """
    source = trial_dir(study_dir, best_trial_number)
    target = study_dir / "best"
    recover_best(study_dir)
    staging = study_dir / f"best.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    wanted = [source / name for name in BEST_FILES]
    wanted += sorted((source / "checkpoints").glob("best*"))
    writing = target
    try:
        staging.mkdir()
        for path in wanted:
            writing = target / path.name
            if path.is_dir():
                _copy_tree_durably(path, staging / path.name)
            elif path.is_file():
                _copy_durably(path, staging / path.name)
        writing = target
        fsync_dir(staging)
        _swap_into_place(staging, target)
    except (OSError, RuntimeError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise storage_error(err, writing) from err
    return target


def recover_best(study_dir: Path) -> None:
    """Undo what a promote_best killed midway left: best.tmp-*/ removed, a lost best/ restored.

    Only the process that holds the study runs it (hpo.study_lock), so no promotion is live.
    """
    target = study_dir / "best"
    for old in sorted(study_dir.glob("best.old-*")):
        if not target.exists():
            os.rename(old, target)  # killed between its two renames: the old best/ is whole
        else:
            shutil.rmtree(old, ignore_errors=True)
    for staging in study_dir.glob("best.tmp-*"):
        shutil.rmtree(staging, ignore_errors=True)


def _copy_durably(source: Path, target: Path) -> None:
    with source.open("rb") as reader, target.open("xb") as writer:
        shutil.copyfileobj(reader, writer, 1 << 20)
        writer.flush()
        os.fsync(writer.fileno())
    shutil.copystat(source, target)


def _copy_tree_durably(source: Path, target: Path) -> None:
    target.mkdir()
    for path in sorted(source.iterdir()):
        if path.is_dir():
            _copy_tree_durably(path, target / path.name)
        elif path.is_file():
            _copy_durably(path, target / path.name)
    fsync_dir(target)


def _swap_into_place(staging: Path, target: Path) -> None:
    """Put the folder `staging` at `target`; the old `target` goes (removed last)."""
    if not target.exists():
        os.rename(staging, target)
        old = None
    elif _exchange(staging, target):
        old = staging  # it now holds the old best/
    else:
        old = target.with_name(f"best.old-{os.getpid()}")
        os.rename(target, old)
        os.rename(staging, target)  # a kill just before this: recover_best restores `old`
    fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    renameat2 = getattr(_libc(), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    done = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    if done == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(second))


def _libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


@dataclass(frozen=True)
class StudyStatus:
    """What `hpo status` and `hpo best` print (hpo.study_report renders it)."""

    study: str
    driver: str | None
    counts: dict[str, int]  # running, complete, pruned, failed
    best: TrialRecord | None
    summary: dict[str, Any] | None  # summary.json, once a run of the study has ended
    objectives: tuple[Objective, ...] = ()  # what study.yaml says it optimizes
    trials: tuple[TrialRecord, ...] = ()  # every trial.json, by number


def read_study(study_dir: str | Path) -> StudyStatus:
    """Counts by state and the best trial, from the files (also while the study runs)."""
    study_dir = Path(study_dir)
    settings_path = study_dir / "study.yaml"
    if not settings_path.is_file():
        raise UserInputError(f"{study_dir}: no study here (study.yaml not found)")
    settings = load_settings(study_dir)
    records = load_trials(study_dir)
    counts = {s: sum(1 for r in records if r.state == s) for s in ("running", *END_STATES)}
    objectives = settings_objectives(settings, settings_path)
    best = best_trial(records, objectives)
    return StudyStatus(
        settings["study"],
        settings.get("driver"),
        counts,
        best,
        read_summary(study_dir),
        tuple(objectives),
        tuple(records),
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


def _say(line: str) -> None:
    from hpo.terminal import printable

    # param values and reasons come from the user's files: never let them drive the terminal
    print(printable(line, limit=None), file=sys.stderr, flush=True)
