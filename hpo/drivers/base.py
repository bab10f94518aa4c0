"""The Driver interface and what every driver shares: suggesters, reporters, trackers.

A driver turns a SearchSpace into trials. Most drivers only implement a Suggester (ask for
params, hear reports, tell outcomes) and hand it to hpo.parallel.run_study, which runs the
trials (in this process or K worker processes), enforces the budget and writes the outputs.
A driver whose library runs its own trial loop (Ray Tune) implements Driver.run directly and
reuses hpo.study for the outputs.

Defined here: Driver, Suggester, Suggestion, TrialReporter, ObjectiveFunction, Tracker (with
NullTracker, MultiTracker), TrialInterrupted. Re-exported from the layers below, where the
modules that must not import a driver read them (docs/architecture.md, the layers): the trial
states, TrialRecord and StudySpec (hpo.records), Decision and CONTINUE (runner.outcome),
Option, SEED and resolve_options (hpo.space.driver_options), history_seed
(hpo.suggesters.seeds).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hpo.command_client import TrialPruned  # one class: hpo.TrialPruned, for scripts too
from hpo.records import FINISHED_STATES, StudySpec, TrialRecord, TrialState
from hpo.space.driver_options import SEED, Option, resolve_options
from hpo.suggesters.seeds import history_seed
from runner.outcome import CONTINUE, Decision

if TYPE_CHECKING:
    from hpo.space import SearchSpace
    from hpo.study import StudyResult


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

    def decide(self, suggestion: Suggestion) -> Decision:
        """After a report: stop the trial (its pruner's reason) or let it go on (CONTINUE)."""
        ...

    def tell(self, suggestion: Suggestion, record: TrialRecord) -> None:
        """The trial ended (complete, pruned or failed); record.values are finite when set."""
        ...


__all__ = [
    "CONTINUE",
    "FINISHED_STATES",
    "SEED",
    "Decision",
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
