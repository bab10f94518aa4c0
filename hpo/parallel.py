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
in a row end the study (an objective that always fails would otherwise spend no steps forever).
These counts, trial.json and the tracker calls are hpo.trial_book's, which Ray shares. A suggester whose
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

import shutil
import time
from collections.abc import Callable, Mapping, Sequence

from hpo.drivers.base import (
    ObjectiveFunction,
    StudySpec,
    Suggester,
    Suggestion,
    Tracker,
    TrialInterrupted,
    TrialRecord,
)
from hpo.interrupts import StopSignals
from hpo.space import SearchSpace
from hpo.study import (
    INTERRUPTED,
    StudyResult,
    open_study,
    previous_trials,
    trial_dir,
    write_trial,
)
from hpo.trial_book import BookedTrial, StudyRun, TrialBook
from hpo.trial_processes import WorkerPool, check_picklable, run_objective
from runner.files import StorageError
from runner.outcome import Outcome

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
    resumes = _resumes(study, previous, suggester)
    run = StudyRun(driver, space, study, objective, tracker, previous)
    with run.running():
        try:
            stop_reason = _TrialLoop(study, objective, suggester, run.book, resumes).run()
        except (KeyboardInterrupt, StorageError) as err:  # the second Ctrl-C, a full disk
            run.finish_after(err)  # the outputs, then exit 130 or the one line naming the file
            raise
        return run.finish(stop_reason)


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


class _TrialRun(BookedTrial):
    """One running trial as the driver's process sees it; it is also the in-process reporter."""

    def __init__(
        self,
        suggestion: Suggestion,
        book: TrialBook,
        suggester: Suggester,
        interrupted: TrialRecord | None = None,
    ) -> None:
        resumes = suggestion.resume_checkpoint is not None
        super().__init__(suggestion.number, suggestion.params, book.study.dir, interrupted, resumes)
        self.suggestion, self.book, self.suggester = suggestion, book, suggester
        self.resume_checkpoint = suggestion.resume_checkpoint
        self.in_process = True  # False: a worker's reports, relayed (its reporter stops it)

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.in_process and self.book.stop_requested():  # a plain objective ends here
            raise TrialInterrupted(f"interrupted at step {step}")
        value = self.book.report(self, step, metrics)
        if value is not None:
            self.suggester.report(self.suggestion, int(step), value)

    def should_stop(self) -> bool:
        if not self.decision.stop:
            self.decision = self.suggester.decide(self.suggestion)
        return self.decision.stop


class _TrialLoop:
    def __init__(
        self,
        study: StudySpec,
        objective: ObjectiveFunction,
        suggester: Suggester,
        book: TrialBook,
        resumes: Sequence[tuple[Suggestion, TrialRecord]] = (),
    ) -> None:
        self.study, self.objective, self.suggester, self.book = study, objective, suggester, book
        self.stop: StopSignals = book.stop
        self.resumes = list(resumes)  # interrupted trials, continued before any new one
        self.running = book.running

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
                    run = _TrialRun(suggestion, self.book, self.suggester, interrupted)
                    self.book.start(run)
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
        # finished_count: a study shared with other workers counts theirs too
        return self.book.why_stop(self.suggester.finished_count(), len(self.running))

    def _end(self, run: _TrialRun, outcome: Outcome) -> None:
        record = self.book.end(run, outcome, lambda r: self.suggester.tell(run.suggestion, r))
        if record.state == "interrupted":  # the runner saw the Ctrl-C first: the search stops
            self.stop.request()
