"""The Driver interface and what every driver shares: trial states, reporters, trackers, options.

A driver turns a SearchSpace into trials. Most drivers only implement a Suggester (ask for
params, hear reports, tell outcomes) and hand it to hpo.parallel.run_study, which runs the
trials (in this process or K worker processes), enforces the budget and writes the outputs.
A driver whose library runs its own trial loop (Ray Tune) implements Driver.run directly and
reuses hpo.study for the outputs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from hpo.command_client import TrialPruned  # one class: hpo.TrialPruned, for scripts too

if TYPE_CHECKING:
    from hpo.space import SearchSpace, SpaceError
    from hpo.study import StudyResult

TrialState = Literal["running", "complete", "pruned", "failed", "interrupted"]
FINISHED_STATES = ("complete", "pruned")  # what counts toward budget.trials, as in Optuna
# interrupted: Ctrl-C or SIGTERM stopped the search while the trial ran; it saved
# checkpoints/last.pt (when its objective checkpoints) and `--resume` continues it, same params.


class TrialInterrupted(Exception):  # noqa: N818 (like TrialPruned)
    """The search is stopping (Ctrl-C, SIGTERM): the trial ends `interrupted`, to be resumed.

    reporter.report() raises it once a stop is requested, so a plain-function objective stops
    at its next report; RunnerObjective raises it when the runner ended the trial interrupted.
    """


class TrialReporter(Protocol):
    """What an objective sees of the search: runner.reporting.Reporter plus the trial's identity.

    The reporters of hpo.parallel and of its worker processes also carry `stop`, the search's
    StopSignals: a command trial (hpo.command_trial) watches stop.requested between reports.
    """

    number: int
    dir: Path  # runs/<study>/trials/<number>/: the objective writes what it wants there
    params: dict[str, Any]
    # the trial's checkpoints/last.pt when --resume continues an interrupted trial, else None
    resume_checkpoint: str | None

    def report(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def should_stop(self) -> bool: ...


ObjectiveFunction = Callable[[dict[str, Any], TrialReporter], "float | Mapping[str, float]"]
"""Any callable (params, reporter) -> value, or -> {metric: value} holding the objective metrics.

Raising TrialPruned ends the trial pruned; any other exception ends it failed (reason: the
message); a NaN or infinite value is a failure, never recorded as a value. In worker processes
(--parallel K > 1) it must be picklable: a module-level function or an instance of one's class.
"""


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
        from hpo.terminal import check_study_name, printable
        from runner.errors import UserInputError

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


class Tracker(Protocol):
    """Records a study as it runs (MLflow: a parent run, one child run per trial).

    Every call comes from the process that runs the driver, never from a worker, in order:
    start_study, then per trial start_trial, log_metrics..., end_trial, and end_study.
    """

    def start_study(self, space: SearchSpace, study: StudySpec, driver: str) -> None: ...

    def start_trial(self, number: int, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, number: int, step: int, metrics: Mapping[str, float]) -> None: ...

    def end_trial(self, record: TrialRecord) -> None: ...

    def end_study(self, result: StudyResult) -> None: ...


class NullTracker:
    """A Tracker that records nothing."""

    def start_study(self, space: SearchSpace, study: StudySpec, driver: str) -> None:
        pass

    def start_trial(self, number: int, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, number: int, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def end_trial(self, record: TrialRecord) -> None:
        pass

    def end_study(self, result: StudyResult) -> None:
        pass


class MultiTracker:
    """Fans every call out to several trackers (the live view and the user's tracker)."""

    def __init__(self, *trackers: Tracker) -> None:
        self.trackers = trackers

    def start_study(self, space: SearchSpace, study: StudySpec, driver: str) -> None:
        for tracker in self.trackers:
            tracker.start_study(space, study, driver)

    def start_trial(self, number: int, params: Mapping[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.start_trial(number, params)

    def log_metrics(self, number: int, step: int, metrics: Mapping[str, float]) -> None:
        for tracker in self.trackers:
            tracker.log_metrics(number, step, metrics)

    def end_trial(self, record: TrialRecord) -> None:
        for tracker in self.trackers:
            tracker.end_trial(record)

    def end_study(self, result: StudyResult) -> None:
        for tracker in self.trackers:
            tracker.end_study(result)


class Driver(Protocol):
    """Runs a study: picks params, runs the objective on them, returns the result."""

    name: str

    def run(
        self,
        space: SearchSpace,
        study: StudySpec,
        objective: ObjectiveFunction,
        tracker: Tracker | None = None,
    ) -> StudyResult: ...


@dataclass
class Suggestion:
    """Params a Suggester hands out for one trial; handle is the driver's own trial object."""

    number: int
    params: dict[str, Any]
    handle: Any = None
    resume_checkpoint: str | None = None  # an interrupted trial's last.pt, to continue from


class Suggester(Protocol):
    """The ask/tell core of a driver, run by hpo.parallel.run_study.

    Every call happens in the driver's process, one at a time; several suggestions may be out
    at once when parallel > 1.
    """

    def finished_count(self) -> int:
        """Trials complete or pruned so far, including those of earlier runs of the study."""
        ...

    def resume(self, record: TrialRecord) -> Suggestion | None:
        """The same trial again (number, params) to continue an interrupted one on --resume,
        or None when the driver cannot (it is then recorded failed)."""
        ...

    def ask(self) -> Suggestion | str | None:
        """Params for the next trial (fixed and active params only), or None when exhausted.

        A study shared with other workers may answer hpo.parallel.ASK_LATER: no trial may
        start yet (others' running trials may still fill the budget or fail).
        """
        ...

    def report(self, suggestion: Suggestion, step: int, value: float) -> None:
        """An intermediate value of the (first) objective metric."""
        ...

    def should_prune(self, suggestion: Suggestion) -> bool: ...

    def tell(self, suggestion: Suggestion, record: TrialRecord) -> None:
        """The trial ended (complete, pruned or failed); record.values are finite when set."""
        ...


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Option:
    """A driver option a space file may set under `driver:`; kind or choices say what is valid."""

    default: Any
    doc: str
    choices: tuple[Any, ...] | None = None
    kind: type | tuple[type, ...] | None = None
    low: float | None = None  # smallest valid number
    high: float | None = None  # largest valid number


SEED = Option(None, "seed of the sampler: a seeded sequential run is reproducible", kind=int)


def history_seed(seed: int | None, trials_so_far: int) -> int | None:
    """The seed of a sampler that starts with `trials_so_far` trials already in the study.

    A new study: the seed itself (a seeded run is reproducible). A resumed one: the seed mixed
    with the number of trials so far, because a sampler seeded again with the same seed draws
    the earlier run's random (start-up) configurations again, and the study would spend its
    budget measuring them twice.
    """
    if seed is None or not trials_so_far:
        return seed
    return zlib.crc32(f"{seed} after {trials_so_far} trials".encode())


def resolve_options(
    driver: str,
    tables: Mapping[str, Mapping[str, Option] | None],
    raw: Mapping[str, Any],
    fail: Callable[[str, str], SpaceError],
) -> dict[str, Any]:
    """The driver's options: defaults, then the flat keys of `driver:`, then its own sub-section.

    tables holds every known driver's option table (None where that driver is not installed).
    A sub-section named after another driver is checked against that driver's table but not
    applied, so one space file serves every driver.
    """
    table = tables[driver] or {}
    resolved = {name: option.default for name, option in table.items()}
    if not isinstance(raw, Mapping):
        raise fail("driver", "expected a mapping of option: value")
    own: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in tables:
            resolved[key] = _checked(driver, table, key, value, f"driver.{key}", fail)
            continue
        if not isinstance(value, Mapping):
            raise fail(f"driver.{key}", f"expected a mapping of {key} option: value")
        for name, option_value in value.items():
            if tables[key] is not None:
                checked = _checked(
                    key, tables[key], name, option_value, f"driver.{key}.{name}", fail
                )
                if key == driver:
                    own[name] = checked
    return {**resolved, **own}  # the driver's own section wins over flat keys


def _checked(
    driver: str,
    options: Mapping[str, Option],
    key: str,
    value: Any,
    where: str,
    fail: Callable[[str, str], SpaceError],
) -> Any:
    if key not in options:
        accepted = ", ".join(options)
        raise fail(where, f"unknown option for driver {driver}; accepted: {accepted}")
    option = options[key]
    if option.choices is not None and value not in option.choices:
        raise fail(where, f"{value!r} is not one of {', '.join(map(str, option.choices))}")
    if option.kind is None or value is None:
        return value
    kinds = option.kind if isinstance(option.kind, tuple) else (option.kind,)
    if float in kinds:
        kinds = (*kinds, int)  # 1 is a fine float
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as text
            try:
                value = float(value)
            except ValueError:
                pass
    if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
        names = " or ".join(k.__name__ for k in kinds if k is not int or float not in kinds)
        raise fail(where, f"expected {names}, got {value!r}")
    if option.low is not None and value < option.low:
        raise fail(where, f"must be >= {option.low}, got {value!r}")
    if option.high is not None and value > option.high:
        raise fail(where, f"must be <= {option.high}, got {value!r}")
    return value


__all__ = [
    "FINISHED_STATES",
    "SEED",
    "Driver",
    "MultiTracker",
    "NullTracker",
    "ObjectiveFunction",
    "Option",
    "StudySpec",
    "Suggester",
    "Suggestion",
    "Tracker",
    "TrialInterrupted",
    "TrialPruned",
    "TrialRecord",
    "TrialReporter",
    "TrialState",
    "history_seed",
    "resolve_options",
]
