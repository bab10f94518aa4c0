"""Runs a study's trials, K at a time, for every driver built on a Suggester.

With one trial at a time (the default) the objective runs in this process: no start-up cost,
and a debugger or traceback works as usual. With --parallel K (or StudySpec.isolate) each
trial runs in a worker process started with "spawn", so a crash, an out-of-memory kill or a
segfault ends that trial as failed and never the study. A worker runs one trial after another
(the next trial reuses it; a dead worker is replaced) and writes its output to the trial's
output.log. Its reporter relays report() and should_stop() to this process, where the driver
decides on pruning, so trackers and the driver's library live in one process only.

Budget: budget.trials counts complete + pruned trials, earlier runs included (as Optuna's
MaxTrialsCallback does); failed trials do not count, but a run stops after as many failures as
budget.trials. budget.timeout stops starting trials; running ones finish. A suggester whose
study is shared with other workers may answer ASK_LATER: trials running elsewhere may fill the
budget, or fail and need replacing; the loop asks again when one of its trials ends, or after
WAIT_SECONDS when it runs none.
"""

from __future__ import annotations

import faulthandler
import math
import multiprocessing
import numbers
import os
import pickle
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from multiprocessing import connection
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
    TrialPruned,
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
from runner.errors import UserInputError

Outcome = tuple[str, Any, str | None, str | None]  # state, plain result, reason, traceback
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
        _check_picklable(objective)
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
    result = finish_study(study, space, driver, time.monotonic() - started, stop_reason)
    trackers.end_study(result)
    return result


def run_objective(objective: ObjectiveFunction, params: dict[str, Any], reporter: Any) -> Outcome:
    """Call the objective once; exceptions become the trial's state and reason."""
    try:
        result = objective(dict(params), reporter)
    except TrialPruned as err:
        return "pruned", None, str(err) if err.args and err.args[0] else None, None
    except (Exception, SystemExit) as err:  # sys.exit() in an objective ends only its trial
        return "failed", None, f"{type(err).__name__}: {err}", traceback.format_exc()
    if isinstance(result, Mapping):
        plain = {str(k): float(v) for k, v in result.items() if isinstance(v, numbers.Real)}
        return "complete", plain, None, None
    if isinstance(result, numbers.Real) and not isinstance(result, bool):
        return "complete", float(result), None, None
    kind = type(result).__name__
    return (
        "failed",
        None,
        f"the objective returned {kind}; return a number or {{metric: value}}",
        None,
    )


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
            _WorkerPool(self.objective, self.study.parallel, self.study.devices)
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
            (run.dir / "traceback.txt").write_text(outcome[3])
        # trial.json first: storage that says finished always has a trial.json that agrees.
        write_trial(self.study.dir, record)
        self.suggester.tell(run.suggestion, record)
        self.failed += record.state == "failed"
        self.tracker.end_trial(record)


# ----------------------------------------------------------------------------- workers


def _check_picklable(objective: ObjectiveFunction) -> None:
    try:
        pickle.dumps(objective)
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise UserInputError(
            f"the objective cannot be sent to a worker process ({err}); "
            "define it at module level or run with --parallel 1"
        ) from None


class _Worker:
    def __init__(
        self,
        context: Any,
        objective: ObjectiveFunction,
        threads: int,
        slot: int,
        devices: str | None,
    ) -> None:
        self.conn, child = context.Pipe()
        self.slot = slot  # one of the pool's `parallel` places, each with its own GPUs
        self.process = context.Process(
            target=_worker_main,
            args=(child, objective, threads, devices),
            name="hpo-trial-worker",
        )
        self.process.start()
        child.close()  # so that this end sees EOF when the worker dies
        self.run: _TrialRun | None = None


class _WorkerPool:
    """Worker processes; this process serves their reporters and notices their deaths."""

    def __init__(
        self, objective: ObjectiveFunction, parallel: int, devices: Sequence[str | None] = ()
    ) -> None:
        self.context = multiprocessing.get_context("spawn")
        self.objective = objective
        # K trials share the machine's cores: K workers each using every core would thrash
        self.threads = max(1, (os.cpu_count() or 1) // parallel)
        # slot k's worker sees only the GPUs devices[k] (CUDA_VISIBLE_DEVICES); None: all
        self.devices = list(devices) or [None] * parallel
        self.free_slots = list(range(parallel))  # a dead worker's slot goes to its replacement
        self.idle: list[_Worker] = []
        self.busy: list[_Worker] = []

    def dispatch(self, run: _TrialRun) -> None:
        while True:
            worker = self.idle.pop() if self.idle else self._start_worker()
            try:
                worker.conn.send((run.number, str(run.dir), run.params))
                break
            except OSError:  # it died while idle: start another
                worker.process.join()
                self.free_slots.append(worker.slot)
        worker.run = run
        self.busy.append(worker)

    def _start_worker(self) -> _Worker:
        slot = self.free_slots.pop(0)
        return _Worker(self.context, self.objective, self.threads, slot, self.devices[slot])

    def wait(self) -> list[tuple[_TrialRun, Outcome]]:
        """Block until a worker reports, asks or ends; returns the trials that ended."""
        waitables = [w.conn for w in self.busy] + [w.process.sentinel for w in self.busy]
        connection.wait(waitables)
        ended = []
        for worker in list(self.busy):
            outcome = self._serve(worker)
            if outcome is None:
                continue
            ended.append((worker.run, outcome))
            worker.run = None
            self.busy.remove(worker)
            if worker.process.is_alive():
                self.idle.append(worker)
            else:
                self.free_slots.append(worker.slot)
        return ended

    def _serve(self, worker: _Worker) -> Outcome | None:
        while True:
            try:
                if not worker.conn.poll():
                    if worker.process.is_alive():
                        return None
                    raise EOFError
                message = worker.conn.recv()
            except (EOFError, OSError):
                worker.process.join(timeout=10)
                return "failed", None, _death_reason(worker.process.exitcode), None
            if message[0] == "report":
                worker.run.report(message[1], message[2])
            elif message[0] == "should_stop":
                try:
                    worker.conn.send(worker.run.should_stop())
                except OSError:
                    pass  # it died after asking: the next poll sees it
            else:
                return message[1]

    def close(self) -> None:
        for worker in self.idle:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        for worker in self.idle + self.busy:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
        self.idle, self.busy = [], []

    def terminate(self) -> None:
        for worker in self.idle + self.busy:
            worker.process.terminate()
        for worker in self.idle + self.busy:
            worker.process.join(timeout=5)


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the trial's worker process was killed by {name}{hint}; see its output.log"
    return f"the trial's worker process exited with code {exitcode}; see its output.log"


class _RelayReporter:
    """The reporter of a trial in a worker: every call goes to the driver's process."""

    def __init__(self, conn: Any, number: int, trial_dir: Path, params: dict[str, Any]) -> None:
        self.conn, self.number, self.dir, self.params = conn, number, trial_dir, params

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        plain = {str(k): float(v) for k, v in metrics.items() if isinstance(v, numbers.Real)}
        self.conn.send(("report", int(step), plain))

    def should_stop(self) -> bool:
        self.conn.send(("should_stop",))
        return self.conn.recv()


def _worker_main(
    conn: Any, objective: ObjectiveFunction, threads: int, devices: str | None = None
) -> None:
    if devices is not None:  # before anything in this process starts CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))
    if "torch" in sys.modules:  # already imported while unpickling the objective
        sys.modules["torch"].set_num_threads(threads)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the driver's process to handle
    faulthandler.enable()  # a segfault's traceback lands in the trial's output.log
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        number, trial_dir, params = task
        redirect_output(Path(trial_dir) / "output.log")
        outcome = run_objective(
            objective, params, _RelayReporter(conn, number, Path(trial_dir), params)
        )
        try:
            conn.send(("done", outcome))
        except OSError:
            return


def redirect_output(path: Path) -> None:
    """Send this process's stdout and stderr to `path` (a trial's output.log)."""
    # At the file-descriptor level, so that C extensions and crash reports land there too.
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
