"""The bookkeeping of one run of a study, the same for every executor: the local loop
(hpo.parallel, with --parallel K) and Ray (hpo.drivers.ray_tune).

    StudyRun      a run from study.yaml to summary.json: the live view and trackers, the stop
                  signals, the outputs however the run ends (interrupted, a full disk)
    TrialBook     the trials of the run, as the driver's process sees them: trials/<n>/trial.json
                  at each start and end, tracker calls, the counts the budget reads (why_stop)
    BookedTrial   one running trial: its record, its last value, how it ended (finish)

An executor decides how a trial runs and how it ends (an Outcome); the book turns that into the
trial's record the same way everywhere: a complete trial's values (objective_values: finite,
one per objective), a pruned one's last reported value, an interrupted one's reason
(INTERRUPTED, what --resume looks for), a continued one's earlier time and steps and the step
it resumed from (resumed_from_step).
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.drivers.base import (
    FINISHED_STATES,
    MultiTracker,
    NullTracker,
    ObjectiveFunction,
    StudySpec,
    Tracker,
    TrialRecord,
)
from hpo.interrupts import ANNOUNCE, StopSignals
from hpo.live_view import LiveView, closing_views, total_steps_of
from hpo.space import Objective, SearchSpace
from hpo.study import INTERRUPTED, StudyResult, finish_study, trial_dir, write_trial
from runner.files import StorageError, atomic_write_text
from runner.outcome import CONTINUE, Outcome

FAILURES_IN_A_ROW = 16  # without budget.trials: this many failed trials in a row end a study


class StudyRun:
    """One run of a study opened by the caller (hpo.study.open_study): see the module doc."""

    def __init__(
        self,
        driver: str,
        space: SearchSpace,
        study: StudySpec,
        objective: ObjectiveFunction,
        tracker: Tracker | None,
        previous: Sequence[TrialRecord],
    ) -> None:
        self.driver, self.space, self.study = driver, space, study
        self.views = [] if study.quiet else [LiveView(space, previous, total_steps_of(objective))]
        self.tracker = MultiTracker(*self.views, tracker or NullTracker())
        self.tracker.start_study(space, study, driver)
        self.book = TrialBook(space, study, self.tracker, previous)
        self.resumed = bool(previous)  # summary.json holds the earlier runs' wall time

    @contextlib.contextmanager
    def running(self) -> Iterator[StopSignals]:
        """Ctrl-C and SIGTERM stop the run, also while the outputs are written: a first one
        then lets them be finished."""
        with StopSignals(ANNOUNCE) as stop, closing_views(self.views):
            self.book.stop = stop
            yield stop

    def finish(self, stop_reason: str) -> StudyResult:
        """The study's outputs (hpo.study.finish_study), then the trackers' end of the study."""
        elapsed = self.book.elapsed()
        result = finish_study(
            self.study, self.space, self.driver, elapsed, stop_reason, resumed=self.resumed
        )
        self.tracker.end_study(result)
        return result

    def finish_after(self, error: BaseException) -> None:
        """The outputs of a run that `error` ends (the caller raises it again): a disk that
        failed (stop_reason storage; the first error names the file), else interrupted."""
        if not isinstance(error, StorageError):
            self.finish("interrupted")
            return
        with contextlib.suppress(StorageError):  # the summary may not be writable either
            self.finish("storage")


class BookedTrial:
    """One running trial as the driver's process keeps it; executors add what they need."""

    def __init__(
        self,
        number: int,
        params: dict[str, Any],
        study_dir: Path,
        interrupted: TrialRecord | None = None,
        resumes: bool = False,
    ) -> None:
        self.number, self.params = number, params
        self.dir = trial_dir(study_dir, number)
        self.started = time.time()
        self.record = TrialRecord(number, params, started=self.started)
        self.earlier_duration = 0.0
        if interrupted is not None:  # continued: its time and steps so far count
            self.record.started, self.record.steps = interrupted.started, interrupted.steps
            self.earlier_duration = interrupted.duration
        self.resumes = resumes  # from its last.pt: trial.json says from which step
        self.resumed_at: int | None = None  # the step the interrupted run saved (TrialBook.start)
        self.last_value: float | None = None
        self.decision = CONTINUE  # the pruner's answer to the reports so far; a stop sticks

    def finish(self, outcome: Outcome, objectives: Sequence[Objective]) -> TrialRecord:
        """The record of the trial that ended with `outcome`."""
        state, reason = outcome.state, outcome.reason
        values = None
        if state == "complete":
            values, reason = objective_values(outcome.result, objectives)
            state = "failed" if reason else "pruned" if self.decision.stop else "complete"
        if state == "pruned":
            values = values or ([self.last_value] if self.last_value is not None else None)
            reason = reason or self.decision.reason or f"pruned at step {self.record.steps}"
        if state == "interrupted":
            reason = INTERRUPTED  # what trackers and resume recognise
        record = self.record
        record.params = self.params  # PBT changes them as the trial goes
        record.state, record.values, record.reason = state, values, reason
        record.duration = self.earlier_duration + time.time() - self.started
        if self.resumes:
            record.resumed_from_step = resumed_from_step(self.dir, self.resumed_at)
        return record


class TrialBook:
    """The trials of one run of a study: their files, tracker calls and the budget's counts."""

    def __init__(
        self,
        space: SearchSpace,
        study: StudySpec,
        tracker: Tracker,
        previous: Sequence[TrialRecord],
    ) -> None:
        self.space, self.study, self.tracker = space, study, tracker
        self.started = time.monotonic()
        self.stop: StopSignals | None = None  # StudyRun.running sets it
        self.running: dict[int, BookedTrial] = {}
        self.interrupted = {r.number: r for r in previous if r.state == "interrupted"}
        # the step each interrupted trial saved last.pt at, read before any trial runs again
        self.resumed_at = {
            n: interrupted_at_step(trial_dir(study.dir, n)) for n in self.interrupted
        }
        self.finished = sum(1 for r in previous if r.state in FINISHED_STATES)
        self.failed = 0  # in this run: as many failures as budget.trials end the study
        self.failed_in_a_row = 0
        self.ended = 0  # trials ended in this run
        # steps of earlier runs count toward budget.max_steps_total (continued trials: their own)
        self.steps_before = sum(
            r.steps for r in previous if r.state not in ("interrupted", "running")
        )
        self.steps_ended = 0  # steps of the trials this run ended

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def stop_requested(self) -> bool:
        return self.stop is not None and self.stop.requested

    def why_stop(self, finished: int | None = None, running: int = 0) -> str | None:
        """Why no more trials start (None: they may): interrupted, timeout, failures, budget.
        `finished`: complete + pruned trials, this book's count unless the study is shared;
        `running`: trials that may still fill budget.trials."""
        if self.stop_requested():
            return "interrupted"
        budget = self.space.budget
        if budget.timeout is not None and self.elapsed() >= budget.timeout:
            return "timeout"
        if budget.trials is not None and self.failed >= budget.trials:
            return "failures"
        if budget.trials is None and self.failed_in_a_row >= FAILURES_IN_A_ROW:
            return "failures"
        finished = self.finished if finished is None else finished
        if budget.trials is not None and finished + running >= budget.trials:
            return "budget"
        if budget.max_steps_total is not None and self.steps_spent() >= budget.max_steps_total:
            return "budget"
        return None

    def steps_spent(self) -> int:
        """Steps of all the study's trials so far, running ones as far as they reported."""
        running = sum(trial.record.steps for trial in self.running.values())
        return self.steps_before + self.steps_ended + running

    def start(self, trial: BookedTrial) -> None:
        trial.resumed_at = self.resumed_at.get(trial.number)
        self.running[trial.number] = trial
        write_trial(self.study.dir, trial.record)
        self.tracker.start_trial(trial.number, trial.params)

    def report(self, trial: BookedTrial, step: int, metrics: Mapping[str, float]) -> float | None:
        """One report of the trial; the objective metric's value when it holds a finite one."""
        trial.record.steps = max(trial.record.steps, int(step))
        self.tracker.log_metrics(trial.number, int(step), metrics)
        value = metrics.get(self.space.objective.metric)
        if isinstance(value, numbers.Real) and math.isfinite(value):
            trial.last_value = float(value)
            return trial.last_value
        return None

    def end(
        self,
        trial: BookedTrial,
        outcome: Outcome,
        tell: Callable[[TrialRecord], None] | None = None,
    ) -> TrialRecord:
        """Record how the trial ended; `tell` hears it after trial.json, before the trackers."""
        del self.running[trial.number]
        record = trial.finish(outcome, self.space.objectives)
        if outcome.traceback:
            atomic_write_text(trial.dir / "traceback.txt", outcome.traceback)
        # trial.json first: storage that says finished always has a trial.json that agrees.
        write_trial(self.study.dir, record)
        if tell is not None:
            tell(record)
        self.ended += 1
        self.finished += record.state in FINISHED_STATES
        self.failed += record.state == "failed"
        self.failed_in_a_row = self.failed_in_a_row + 1 if record.state == "failed" else 0
        self.steps_ended += record.steps
        self.tracker.end_trial(record)
        return record


def objective_values(
    result: Any, objectives: Sequence[Objective]
) -> tuple[list | None, str | None]:
    """(values, None) of the objective metrics in a trial's result, or (None, why not)."""
    if not isinstance(result, dict):
        if len(objectives) > 1:
            return None, "several objectives: return {metric: value} for each of them"
        result = {objectives[0].metric: result}
    missing = [o.metric for o in objectives if o.metric not in result]
    if missing:
        return None, f"the objective's result has no '{missing[0]}' (it has: {', '.join(result)})"
    values = [result[o.metric] for o in objectives]
    for objective, value in zip(objectives, values, strict=True):
        if not math.isfinite(value):
            return None, f"{objective.metric} is {value}"
    return values, None


def interrupted_at_step(directory: Path) -> int | None:
    """The step an interrupted runner trial saved last.pt at (its result.json), if it says."""
    try:
        saved = json.loads((directory / "result.json").read_text())
    except (OSError, ValueError):
        return None
    if isinstance(saved, dict) and saved.get("status") == "interrupted":
        return saved.get("steps")
    return None


def resumed_from_step(directory: Path, fallback: int | None) -> int | None:
    """The step a resumed trial continued from: the runner's result.json says (its field
    resumed_from_step), else what the interrupted run's result.json said."""
    try:
        saved = json.loads((directory / "result.json").read_text())
    except (OSError, ValueError):
        return fallback
    step = saved.get("resumed_from_step") if isinstance(saved, dict) else None
    return step if isinstance(step, int) else fallback
