"""Where a trial's objective runs: once in this process, or in a worker process of a pool.

run_objective calls the objective once and turns what it returns or raises into an Outcome.
WorkerPool (hpo.parallel's --parallel K, or StudySpec.isolate) runs each trial in a worker
process started with "spawn", so a crash, an out-of-memory kill or a segfault ends that trial as
failed and never the study. A worker runs one trial after another (the next trial reuses it; a
dead worker is replaced) and writes its output to the trial's output.log (redirect_output, which
Ray trials use too). Its reporter relays report() and should_stop() to the driver's process
(hpo.relay), where the driver decides on pruning, so trackers and the driver's library live in one process.

Ctrl-C (hpo.interrupts): each worker runs in a process group of its own, so a Ctrl-C at the
terminal (SIGINT to the foreground group) or `kill -INT` reaches the driver's process only; it
relays exactly one SIGINT to each busy worker (stop_trials), whatever reached it (SIGINT,
SIGTERM, from the terminal, from dvc). In the worker the runner's handler catches it while a
step runs (the trial saves last.pt and ends interrupted), or the worker's StopSignals does and
the trial's next report() raises TrialInterrupted. A second Ctrl-C kills the workers
(kill_all). A worker dies with the driver's process (PR_SET_PDEATHSIG on Linux), so a kill -9
of the search never leaves a worker writing into a trial folder that --resume reuses.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Mapping, Sequence
from multiprocessing import connection
from pathlib import Path
from typing import Any, Protocol

from hpo.drivers.base import ObjectiveFunction, TrialInterrupted, TrialPruned
from hpo.interrupts import STOP_SIGNALS, StopSignals
from hpo.quiet import apply_inherited
from hpo.relay import RelayReporter, answer
from hpo.trial_book import objective_result
from runner.errors import UserInputError
from runner.outcome import Outcome


class RunningTrial(Protocol):
    """A trial as the pool sees it: what to run, and where its worker's reports go."""

    number: int
    dir: Path
    params: dict[str, Any]
    resume_checkpoint: str | None

    def report(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def should_stop(self) -> bool: ...


def run_objective(objective: ObjectiveFunction, params: dict[str, Any], reporter: Any) -> Outcome:
    """Call the objective once; exceptions become the trial's state and reason."""
    try:
        result = objective(dict(params), reporter)
    except TrialPruned as err:
        return Outcome("pruned", reason=str(err) if err.args and err.args[0] else None)
    except TrialInterrupted as err:
        return Outcome("interrupted", reason=str(err) if err.args and err.args[0] else None)
    except (Exception, SystemExit) as err:  # sys.exit() in an objective ends only its trial
        return Outcome(
            "failed", reason=f"{type(err).__name__}: {err}", traceback=traceback.format_exc()
        )
    return objective_result(result)


def check_picklable(objective: ObjectiveFunction) -> None:
    """Raise UserInputError, before any trial, when the objective cannot be sent to a worker."""
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
        self.run: RunningTrial | None = None


class WorkerPool:
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

    def dispatch(self, run: RunningTrial) -> None:
        """Start the trial in an idle worker, or in a new one."""
        while True:
            worker = self.idle.pop() if self.idle else self._start_worker()
            try:
                worker.conn.send((run.number, str(run.dir), run.params, run.resume_checkpoint))
                break
            except OSError:  # it died while idle: start another
                worker.process.join()
                self.free_slots.append(worker.slot)
        worker.run = run
        self.busy.append(worker)

    def _start_worker(self) -> _Worker:
        slot = self.free_slots.pop(0)
        # Ctrl-C while the worker starts (before its own group and handler): held, not a
        # KeyboardInterrupt traceback in its bootstrap; it unblocks them once it handles them
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return _Worker(self.context, self.objective, self.threads, slot, self.devices[slot])
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def wait(self) -> list[tuple[RunningTrial, Outcome]]:
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
                return Outcome("failed", reason=_death_reason(worker.process.exitcode))
            if not answer(message, worker.run, worker.conn):
                return message[1]  # ("done", Outcome)

    def close(self) -> None:
        """Let the workers end, waiting up to 10 s each before killing them."""
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

    def stop_trials(self) -> None:
        """Ask each running trial to stop after its current step: one SIGINT per busy worker.

        Called from the driver's signal handler: it only sends signals.
        """
        for worker in self.busy:
            try:
                os.kill(worker.process.pid, signal.SIGINT)
            except (ProcessLookupError, TypeError):
                pass  # it has just ended: wait() sees it

    def kill_all(self) -> None:
        """End every worker now (a second Ctrl-C): files they write are replaced atomically."""
        for worker in self.idle + self.busy:
            worker.process.kill()
        for worker in self.idle + self.busy:
            worker.process.join(timeout=5)


def _death_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"the trial's worker process was killed by {name}{hint}; see its output.log"
    return f"the trial's worker process exited with code {exitcode}; see its output.log"


class _WorkerReporter(RelayReporter):
    """The TrialReporter of a trial in a worker: its calls are answered in the driver's process."""

    def __init__(
        self,
        conn: Any,
        number: int,
        trial_dir: Path,
        params: dict[str, Any],
        resume_checkpoint: str | None,
        stop: StopSignals,
    ) -> None:
        super().__init__(conn)
        self.number, self.dir, self.params = number, trial_dir, params
        self.resume_checkpoint, self.stop = resume_checkpoint, stop

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        if self.stop.requested:  # the search is stopping: a plain objective ends here
            raise TrialInterrupted(f"interrupted at step {step}")
        super().report(step, metrics)


def _worker_main(
    conn: Any, objective: ObjectiveFunction, threads: int, devices: str | None = None
) -> None:
    if devices is not None:  # before anything in this process starts CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))
    if "torch" in sys.modules:  # already imported while unpickling the objective
        sys.modules["torch"].set_num_threads(threads)
    os.setpgrp()  # the terminal's Ctrl-C goes to the driver's process, which relays one SIGINT
    _die_with_parent()
    stop = StopSignals()  # the relayed SIGINT, outside the runner's own handler
    stop.__enter__()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # blocked while it started
    faulthandler.enable()  # a segfault's traceback lands in the trial's output.log
    apply_inherited()  # --quiet: the study's process silenced third-party warnings and loggers
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        number, trial_dir, params, resume_checkpoint = task
        redirect_output(Path(trial_dir) / "output.log")
        reporter = _WorkerReporter(conn, number, Path(trial_dir), params, resume_checkpoint, stop)
        outcome = run_objective(objective, params, reporter)
        try:
            conn.send(("done", outcome))
        except OSError:
            return


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the driver's process dies (kill -9, OOM)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before prctl
        os._exit(1)


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
