"""The worker process of hpo.trial_processes.WorkerPool: runs one trial after another.

worker_main is the process's target (started with "spawn"): it takes the GPUs and threads its
pool slot gives it, leaves the terminal's process group (a Ctrl-C reaches the driver's process
only, which relays one SIGINT to each busy worker), dies with the driver's process
(PR_SET_PDEATHSIG on Linux), then runs each trial it is sent with its output in the trial's
output.log (redirect_output, which Ray trials use too) and a reporter that relays report() and
should_stop() to the driver's process (hpo.relay), and sends back the trial's Outcome.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpo.drivers.base import ObjectiveFunction, TrialInterrupted
from hpo.interrupts import STOP_SIGNALS, StopSignals
from hpo.objective_call import run_objective
from hpo.quiet import apply_inherited
from hpo.relay import RelayReporter


class WorkerReporter(RelayReporter):
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


def worker_main(
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
        reporter = WorkerReporter(conn, number, Path(trial_dir), params, resume_checkpoint, stop)
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
