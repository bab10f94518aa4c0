"""Ctrl-C and SIGTERM during a search: the first stops it cleanly, the second at once.

StopSignals, installed for SIGINT and SIGTERM while a study runs (hpo.parallel.run_study, the
Ray driver) and in each trial worker process (hpo.trial_processes):

- the first signal sets `requested` and calls the on_stop callbacks (the worker pool relays
  one SIGINT to each busy worker; the Ray driver asks Tune to stop). The study starts no more
  trials; each running trial finishes its current step, saves checkpoints/last.pt and ends
  `interrupted` (the runner's own handler, runner.loop._InterruptFlag, catches the signal
  while a step runs; a plain-function objective is stopped by its next reporter.report(),
  which raises TrialInterrupted). Then summary.json is written and `hpo` exits 130.
- the second raises KeyboardInterrupt: workers are killed, running trials are recorded
  `interrupted` (their last.pt is the last one saved; every file is written atomically),
  and `hpo` exits 130.

SIGTERM is converted to the same path as SIGINT, so `kill PID`, `timeout`, a scheduler's
preemption and `dvc repro` under either signal behave as a Ctrl-C does.

Before a study runs (imports, opening storage, MLflow) and after it, exit_on_interrupt ends
the process at once with `hpo: interrupted` and exit 130.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command ended by Ctrl-C


def _exit_interrupted(signum: int, frame: FrameType | None) -> None:
    os.write(2, b"hpo: interrupted\n")  # print() is not safe in a handler
    os._exit(EXIT_INTERRUPTED)


def exit_on_interrupt() -> dict[int, object]:
    """Until a study installs StopSignals: Ctrl-C or SIGTERM ends the process at once, one line
    on stderr, exit 130 (hpo.cli.main calls it first thing). Returns the previous handlers.

    At once, and not by a KeyboardInterrupt: raised in the middle of an import, Python may
    swallow one ("Exception ignored in ... _get_module_lock") and go on with the search. Ending
    here is as safe as a kill -9, which every file of a study is written to survive: nothing
    is half-written, and --resume continues whatever had started.
    """
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {signum: signal.signal(signum, _exit_interrupted) for signum in STOP_SIGNALS}


def exit_at_next_signal() -> None:
    """The command is ending interrupted: another Ctrl-C ends the process now, without a
    traceback from whatever clean-up (atexit, library shutdown) it interrupts."""
    exit_on_interrupt()


class StopSignals:
    """While installed: first SIGINT/SIGTERM requests a stop, the second interrupts at once."""

    def __init__(self, announce: str | None = None) -> None:
        self.requested = False
        self.announce = announce  # a line for stderr on the first signal
        self._callbacks: list[Callable[[], None]] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the signal handler) when a stop is first requested."""
        self._callbacks.append(callback)

    def request(self) -> None:
        """Stop as the first signal would: a trial saw the signal first (the runner's handler)."""
        if self.requested:
            return
        self.requested = True
        if self.announce:
            os.write(2, (self.announce + "\n").encode())  # print() is not safe in a handler
        for callback in self._callbacks:
            callback()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.request()


ANNOUNCE = (
    "hpo: stopping: running trials finish their current step and save a checkpoint "
    "(Ctrl-C again to stop at once); continue later with --resume"
)


def study_interrupted(result: Any) -> int:
    """A study Ctrl-C or SIGTERM stopped cleanly (a StudyResult): how to go on; exit 130."""
    exit_at_next_signal()
    print(
        f"hpo: interrupted: {result.count('interrupted')} trial(s) interrupted, "
        f"{result.dir / 'summary.json'} written; continue with --resume",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED
