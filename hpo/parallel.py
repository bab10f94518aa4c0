"""Runs a study's trials, K at a time, for every driver built on a Suggester.

With one trial at a time (the default) the objective runs in this process: no start-up cost,
and a debugger or traceback works as usual. With --parallel K (or StudySpec.isolate) each
trial runs in a worker process (hpo.trial_processes.WorkerPool), so a crash ends that trial as
failed and never the study; reports and pruning decisions still happen in this process.

Budget: budget.trials counts complete + pruned trials, earlier runs included (as Optuna's
MaxTrialsCallback does); failed trials do not count, but a run stops after as many failures as
budget.trials. budget.timeout stops starting trials; running ones finish. budget.max_steps_total
stops starting trials once the steps of every trial (each trial's largest reported step, earlier
runs and failed trials included, running ones as far as they got) reach it: trials that a pruner
stops early leave steps for more trials; a trial already started runs to its end, so a study
may overshoot by less than one trial. Without budget.trials, FAILURES_IN_A_ROW failed trials
in a row end the study (an objective that always fails would otherwise spend no steps forever). A suggester whose
study is shared with other workers may answer ASK_LATER: trials running elsewhere may fill the
budget, or fail and need replacing; the loop asks again when one of its trials ends, or after
WAIT_SECONDS when it runs none.

Ctrl-C or SIGTERM (hpo.interrupts.StopSignals): the first starts no more trials and lets each
running trial finish its current step and save last.pt; those trials end `interrupted` and the
study's outputs are written, with stop_reason "interrupted" (`hpo` then exits 130). A second
one kills the workers and records the running trials interrupted at once.

--resume first continues every interrupted trial (the earlier run's Ctrl-C, or a trial left
running by a kill -9): the same number, params and folder, from its checkpoints/last.pt
(Suggester.resume; the objective sees reporter.resume_checkpoint), so no step is trained twice;
then it asks the suggester for new trials until the budget is spent. A driver that cannot
continue a trial answers None and the trial is recorded failed.
"""

from __future__ import annotations

import json
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
    TrialInterrupted,
    TrialRecord,
)
from hpo.interrupts import ANNOUNCE, StopSignals
from hpo.live_view import LiveView, closing_views, total_steps_of
from hpo.space import Objective, SearchSpace
from hpo.study import (
    INTERRUPTED,
    StudyResult,
    finish_study,
    open_study,
    previous_trials,
    trial_dir,
    write_trial,
)
from hpo.trial_processes import WorkerPool, check_picklable, run_objective
from runner.files import StorageError, atomic_write_text
from runner.outcome import CONTINUE, Outcome

ASK_LATER = "ask later"  # what Suggester.ask() returns when it may start no trial yet
WAIT_SECONDS = 1.0
FAILURES_IN_A_ROW = 16  # without budget.trials: this many failed trials in a row end a study


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
    resumes = _resumes(study, previous, suggester)
    views = [] if study.quiet else [LiveView(space, previous, total_steps_of(objective))]
    trackers = MultiTracker(*views, tracker or NullTracker())
    trackers.start_study(space, study, driver)
    started = time.monotonic()
    # also while the outputs are written: a first Ctrl-C then lets them be finished
    with StopSignals(ANNOUNCE) as stop, closing_views(views):
        try:
            loop = _TrialLoop(space, study, objective, suggester, trackers, stop, resumes)
            # steps of earlier runs count toward budget.max_steps_total (continued trials: below)
            loop.steps_before = sum(
                r.steps for r in previous if r.state not in ("interrupted", "running")
            )
            stop_reason = loop.run()
        except KeyboardInterrupt:  # the second Ctrl-C: the outputs, then exit 130
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


def _resumes(
    study: StudySpec, previous: Sequence[TrialRecord], suggester: Suggester
) -> list[tuple[Suggestion, TrialRecord]]:
    """The interrupted trials to continue first, each with its last.pt when it saved one."""
    resumes = []
    for record in previous:
        if record.state != "interrupted":
            continue
        suggestion = suggester.resume(record)
        if suggestion is None:  # the driver cannot continue it
            record.state, record.reason = "failed", INTERRUPTED
            write_trial(study.dir, record)
            continue
        last = trial_dir(study.dir, record.number) / "checkpoints" / "last.pt"
        suggestion.resume_checkpoint = str(last) if last.is_file() else None
        resumes.append((suggestion, record))
    return resumes


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


class _TrialRun:
    """One running trial as the driver's process sees it; it is also the in-process reporter."""

    def __init__(
        self,
        suggestion: Suggestion,
        study_dir: Path,
        metric: str,
        suggester: Suggester,
        tracker: Tracker,
        stop: StopSignals,
        interrupted: TrialRecord | None = None,
    ) -> None:
        self.suggestion, self.metric = suggestion, metric
        self.suggester, self.tracker, self.stop = suggester, tracker, stop
        self.number, self.params = suggestion.number, suggestion.params
        self.dir = trial_dir(study_dir, suggestion.number)
        self.resume_checkpoint = suggestion.resume_checkpoint
        self.started = time.time()
        self.record = TrialRecord(self.number, self.params, started=self.started)
        self.earlier_duration = 0.0
        self.resumed_at: int | None = None
        if interrupted is not None:  # continued: its time and steps so far count
            self.record.started, self.record.steps = interrupted.started, interrupted.steps
            self.earlier_duration = interrupted.duration
            if self.resume_checkpoint is not None:
                self.resumed_at = interrupted_at_step(self.dir)
        self.last_value: float | None = None
        self.decision = CONTINUE  # the suggester's answer to the reports so far; a stop sticks
        self.in_process = True  # False: a worker's reports, relayed (its reporter stops it)

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.in_process and self.stop.requested:  # stopping: a plain objective ends here
            raise TrialInterrupted(f"interrupted at step {step}")
        self.record.steps = max(self.record.steps, int(step))
        self.tracker.log_metrics(self.number, int(step), metrics)
        value = metrics.get(self.metric)
        if isinstance(value, numbers.Real) and math.isfinite(value):
            self.last_value = float(value)
            self.suggester.report(self.suggestion, int(step), self.last_value)

    def should_stop(self) -> bool:
        if not self.decision.stop:
            self.decision = self.suggester.decide(self.suggestion)
        return self.decision.stop

    def finish(self, outcome: Outcome, objectives: Sequence[Objective]) -> TrialRecord:
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
        record.state, record.values, record.reason = state, values, reason
        record.duration = self.earlier_duration + time.time() - self.started
        if self.resume_checkpoint is not None:
            record.resumed_from_step = resumed_from_step(self.dir, self.resumed_at)
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
        stop: StopSignals,
        resumes: Sequence[tuple[Suggestion, TrialRecord]] = (),
    ) -> None:
        self.space, self.study, self.objective = space, study, objective
        self.suggester, self.tracker, self.stop = suggester, tracker, stop
        self.resumes = list(resumes)  # interrupted trials, continued before any new one
        self.started = time.monotonic()
        self.failed = 0
        self.failed_in_a_row = 0
        self.steps_before = 0  # steps of earlier runs' trials (set by run_study)
        self.steps_ended = 0  # steps of the trials this run ended
        self.running: dict[int, _TrialRun] = {}

    def run(self) -> str:
        pool = (
            WorkerPool(self.objective, self.study.parallel, self.study.devices)
            if self.study.in_workers
            else None
        )
        if pool is not None:
            self.stop.on_stop(pool.stop_trials)
        exhausted = False
        try:
            while True:
                stop = "exhausted" if exhausted else self._why_stop()
                later = False
                while stop is None and len(self.running) < self.study.parallel:
                    interrupted = None
                    if self.resumes:
                        suggestion, interrupted = self.resumes.pop(0)
                    else:
                        suggestion = self.suggester.ask()
                    if suggestion is None:
                        exhausted, stop = True, "exhausted"
                        break
                    if suggestion is ASK_LATER:
                        later = True
                        break
                    run = self._start(suggestion, interrupted)
                    if pool is None:
                        self._end(run, run_objective(self.objective, run.params, run))
                    else:
                        run.in_process = False
                        pool.dispatch(run)
                    stop = self._why_stop()
                if not self.running:
                    if later:
                        time.sleep(WAIT_SECONDS)
                        continue
                    return stop or "budget"
                for run, outcome in pool.wait():
                    self._end(run, outcome)
        except BaseException:  # a second Ctrl-C, or a bug: the running trials are interrupted
            self.stop.requested = True  # stopping already: nothing to announce or relay
            if pool is not None:
                pool.kill_all()
            for run in list(self.running.values()):
                self._end(run, Outcome("interrupted", reason=INTERRUPTED))
            raise
        finally:
            if pool is not None:
                pool.close()

    def _why_stop(self) -> str | None:
        if self.stop.requested:
            return "interrupted"
        budget = self.space.budget
        if budget.timeout is not None and time.monotonic() - self.started >= budget.timeout:
            return "timeout"
        if budget.trials is not None and self.failed >= budget.trials:
            return "failures"
        if budget.trials is None and self.failed_in_a_row >= FAILURES_IN_A_ROW:
            return "failures"
        if budget.trials is not None:
            if self.suggester.finished_count() + len(self.running) >= budget.trials:
                return "budget"
        if budget.max_steps_total is not None and self.steps_spent() >= budget.max_steps_total:
            return "budget"
        return None

    def steps_spent(self) -> int:
        """Steps of all the study's trials so far, running ones as far as they reported."""
        running = sum(run.record.steps for run in self.running.values())
        return self.steps_before + self.steps_ended + running

    def _start(self, suggestion: Suggestion, interrupted: TrialRecord | None) -> _TrialRun:
        run = _TrialRun(
            suggestion,
            self.study.dir,
            self.space.objective.metric,
            self.suggester,
            self.tracker,
            self.stop,
            interrupted,
        )
        write_trial(self.study.dir, run.record)
        self.running[run.number] = run
        self.tracker.start_trial(run.number, run.params)
        return run

    def _end(self, run: _TrialRun, outcome: Outcome) -> None:
        del self.running[run.number]
        record = run.finish(outcome, self.space.objectives)
        if outcome.traceback:
            atomic_write_text(run.dir / "traceback.txt", outcome.traceback)
        # trial.json first: storage that says finished always has a trial.json that agrees.
        write_trial(self.study.dir, record)
        self.suggester.tell(run.suggestion, record)
        self.failed += record.state == "failed"
        self.failed_in_a_row = self.failed_in_a_row + 1 if record.state == "failed" else 0
        self.steps_ended += record.steps
        self.tracker.end_trial(record)
        if record.state == "interrupted":  # the runner saw the Ctrl-C first: the search stops
            self.stop.request()
