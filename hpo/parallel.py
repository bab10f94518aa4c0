"""Runs a study's trials, K at a time, for every driver built on a Suggester.

With one trial at a time (the default) the objective runs in this process: no start-up cost,
and a debugger or traceback works as usual. With --parallel K (or StudySpec.isolate) each
trial runs in a worker process (hpo.trial_processes.WorkerPool), so a crash ends that trial as
failed and never the study; reports and pruning decisions still happen in this process.

Budget: budget.trials counts complete + pruned trials, earlier runs included (as Optuna's
MaxTrialsCallback does); failed trials do not count, but a run stops after as many failures as
budget.trials. budget.timeout stops starting trials; running ones finish. A suggester whose
study is shared with other workers may answer ASK_LATER: trials running elsewhere may fill the
budget, or fail and need replacing; the loop asks again when one of its trials ends, or after
WAIT_SECONDS when it runs none.
"""

from __future__ import annotations

import math
import numbers
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.drivers.base import (
    MultiTracker,
    NullTracker,
    ObjectiveFunction,
    StudySpec,
    Suggester,
    Suggestion,
    Tracker,
    TrialRecord,
)
from hpo.space import Objective, SearchSpace
from hpo.study import (
    INTERRUPTED,
    LiveView,
    StudyResult,
    finish_study,
    open_study,
    previous_trials,
    trial_dir,
    write_trial,
)
from hpo.trial_processes import (
    Outcome,
    WorkerPool,
    check_picklable,
    run_objective,
)
from runner.files import StorageError, atomic_write_text

ASK_LATER = "ask later"  # what Suggester.ask() returns when it may start no trial yet
WAIT_SECONDS = 1.0


def run_study(
    driver: str,
    space: SearchSpace,
    study: StudySpec,
    objective: ObjectiveFunction,
    tracker: Tracker | None,
    make_suggester: Callable[[Sequence[TrialRecord]], Suggester],
) -> StudyResult:
    """Run trials until the budget is spent, then write the outputs; see the module doc."""
    if study.in_workers:
        check_picklable(objective)
    previous = previous_trials(study, space)
    created = not study.dir.exists()
    study.dir.mkdir(parents=True, exist_ok=True)
    try:
        suggester = make_suggester(previous)
    except BaseException:
        if created:  # a study that could not start leaves nothing behind
            shutil.rmtree(study.dir, ignore_errors=True)
        raise
    previous = open_study(study, space, driver, previous)
    views = [] if study.quiet else [LiveView(space, previous)]
    trackers = MultiTracker(*views, tracker or NullTracker())
    trackers.start_study(space, study, driver)
    started = time.monotonic()
    try:
        stop_reason = _TrialLoop(space, study, objective, suggester, trackers).run()
    except KeyboardInterrupt:
        trackers.end_study(
            finish_study(study, space, driver, time.monotonic() - started, "interrupted")
        )
        raise
    except StorageError:  # a study file could not be written (disk full): the summary may be
        try:
            trackers.end_study(
                finish_study(study, space, driver, time.monotonic() - started, "storage")
            )
        except StorageError:
            pass  # the first error says which file; the CLI prints it as one line
        raise
    result = finish_study(study, space, driver, time.monotonic() - started, stop_reason)
    trackers.end_study(result)
    return result


class _TrialRun:
    """One running trial as the driver's process sees it; it is also the in-process reporter."""

    def __init__(
        self,
        suggestion: Suggestion,
        study_dir: Path,
        metric: str,
        suggester: Suggester,
        tracker: Tracker,
    ) -> None:
        self.suggestion, self.metric = suggestion, metric
        self.suggester, self.tracker = suggester, tracker
        self.number, self.params = suggestion.number, suggestion.params
        self.dir = trial_dir(study_dir, suggestion.number)
        self.record = TrialRecord(self.number, self.params, started=time.time())
        self.last_value: float | None = None
        self.stop_requested = False

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        self.record.steps = max(self.record.steps, int(step))
        self.tracker.log_metrics(self.number, int(step), metrics)
        value = metrics.get(self.metric)
        if isinstance(value, numbers.Real) and math.isfinite(value):
            self.last_value = float(value)
            self.suggester.report(self.suggestion, int(step), self.last_value)

    def should_stop(self) -> bool:
        if not self.stop_requested:
            self.stop_requested = bool(self.suggester.should_prune(self.suggestion))
        return self.stop_requested

    def finish(self, outcome: Outcome, objectives: Sequence[Objective]) -> TrialRecord:
        state, result, reason, _ = outcome
        values = None
        if state == "complete":
            values, reason = objective_values(result, objectives)
            state = "failed" if reason else "pruned" if self.stop_requested else "complete"
        if state == "pruned":
            values = values or ([self.last_value] if self.last_value is not None else None)
            reason = reason or f"pruned at step {self.record.steps}"
        record = self.record
        record.state, record.values, record.reason = state, values, reason
        record.duration = time.time() - record.started
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


class _TrialLoop:
    def __init__(
        self,
        space: SearchSpace,
        study: StudySpec,
        objective: ObjectiveFunction,
        suggester: Suggester,
        tracker: Tracker,
    ) -> None:
        self.space, self.study, self.objective = space, study, objective
        self.suggester, self.tracker = suggester, tracker
        self.started = time.monotonic()
        self.failed = 0
        self.running: dict[int, _TrialRun] = {}

    def run(self) -> str:
        pool = (
            WorkerPool(self.objective, self.study.parallel, self.study.devices)
            if self.study.in_workers
            else None
        )
        exhausted = False
        try:
            while True:
                stop = "exhausted" if exhausted else self._why_stop()
                later = False
                while stop is None and len(self.running) < self.study.parallel:
                    suggestion = self.suggester.ask()
                    if suggestion is None:
                        exhausted, stop = True, "exhausted"
                        break
                    if suggestion is ASK_LATER:
                        later = True
                        break
                    run = self._start(suggestion)
                    if pool is None:
                        self._end(run, run_objective(self.objective, run.params, run))
                    else:
                        pool.dispatch(run)
                    stop = self._why_stop()
                if not self.running:
                    if later:
                        time.sleep(WAIT_SECONDS)
                        continue
                    return stop or "budget"
                for run, outcome in pool.wait():
                    self._end(run, outcome)
        except BaseException:
            if pool is not None:
                pool.terminate()
            for run in list(self.running.values()):
                self._end(run, ("failed", None, INTERRUPTED, None))
            raise
        finally:
            if pool is not None:
                pool.close()

    def _why_stop(self) -> str | None:
        budget = self.space.budget
        if budget.timeout is not None and time.monotonic() - self.started >= budget.timeout:
            return "timeout"
        if budget.trials is not None and self.failed >= budget.trials:
            return "failures"
        if budget.trials is not None:
            if self.suggester.finished_count() + len(self.running) >= budget.trials:
                return "budget"
        return None

    def _start(self, suggestion: Suggestion) -> _TrialRun:
        run = _TrialRun(
            suggestion, self.study.dir, self.space.objective.metric, self.suggester, self.tracker
        )
        write_trial(self.study.dir, run.record)
        self.running[run.number] = run
        self.tracker.start_trial(run.number, run.params)
        return run

    def _end(self, run: _TrialRun, outcome: Outcome) -> None:
        del self.running[run.number]
        record = run.finish(outcome, self.space.objectives)
        if outcome[3]:
            atomic_write_text(run.dir / "traceback.txt", outcome[3])
        # trial.json first: storage that says finished always has a trial.json that agrees.
        write_trial(self.study.dir, record)
        self.suggester.tell(run.suggestion, record)
        self.failed += record.state == "failed"
        self.tracker.end_trial(record)
