"""A running command trial (hpo.command_trial): its reports read as they come and handed to the
driver, and the signals that stop it when it is pruned or the search stops.

TrialState parses the reports (reports.jsonl, and `hpo: {...}` lines of output.log, which Tail
reads as they grow) and keeps the best and the last; Watch serves the command until it exits:
it answers each batch of reports once the driver has decided on them (the answer file:
hpo.command_client's should_prune() waits for it), waking up when a report rings the Doorbell;
pruned, it creates the prune file, SIGTERM follows (STOPS_ITSELF_WAIT, or kill_after for a
script that said it stops itself), then SIGKILL; the search stopping, one SIGINT, then SIGKILL.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpo.command_client import (
    CHECKPOINT,
    STEP,
    STOPS_ITSELF,
)
from hpo.drivers.base import TrialInterrupted
from hpo.space import Objective
from runner.files import atomic_write_text
from runner.outcome import CONTINUE, EndState, pruned_at

PRINTED_REPORT = b"hpo: {"  # a line of output.log that is a report
# How often the files and the process are looked at when nothing rings the doorbell
POLL_SECONDS = 0.05
# A script that checks hpo.should_prune() right after its report says so (a line of the report
# file) within this time of the pruner's decision on its first report; until then, and for a
# script that never says so, SIGTERM waits only this long.
STOPS_ITSELF_WAIT = 0.5


class TrialState:
    """What the reports said: the best report of the first objective, the last of each metric."""

    def __init__(self, objectives: Sequence[Objective]) -> None:
        self.objective = objectives[0]
        self.best: dict[str, float] | None = None
        self.last: dict[str, float] = {}
        self.steps = 0
        self.checkpoint: str | None = None
        self.stops_itself = False

    def parse(self, line: bytes) -> tuple[int, dict[str, float]] | None:
        """The (step, metrics) of a report line; other lines update the state; None then."""
        try:
            record = json.loads(line.decode("utf-8", "replace").removeprefix("hpo: "))
        except ValueError:
            return None  # not a report (a line cut by a crash, a printed line of text)
        if not isinstance(record, dict):
            return None
        if record.get(STOPS_ITSELF) is True:
            self.stops_itself = True
        if isinstance(record.get(CHECKPOINT), str):
            self.checkpoint = record[CHECKPOINT]
        step = record.get(STEP)
        if isinstance(step, bool) or not isinstance(step, int):
            return None
        metrics = {
            str(k): float(v)
            for k, v in record.items()
            if k != STEP
            and isinstance(v, numbers.Real)
            and not isinstance(v, bool)
            and math.isfinite(v)
        }
        if not metrics:
            return None
        self.steps = max(self.steps, step)
        self.last.update(metrics)
        value = metrics.get(self.objective.metric)
        if value is not None and (
            self.best is None or self.objective.is_better(value, self.best[self.objective.metric])
        ):
            self.best = metrics
        return step, metrics

    def replay(self, line: bytes) -> None:
        """An earlier attempt's report: it counts, but the script's flags were that attempt's."""
        stops_itself = self.stops_itself
        self.parse(line)
        self.stops_itself = stops_itself

    def result(self) -> dict[str, float] | None:
        """The best report's metrics, with the last value of metrics it lacks; None: no value."""
        if self.best is None:
            return None
        return {**self.last, **self.best}


class Tail:
    """New whole lines of a file another process appends to (a partial last line waits)."""

    def __init__(
        self, path: Path, start: int = 0, only: bytes | None = None, answers: Path | None = None
    ) -> None:
        self.path, self.offset, self.only = path, start, only
        self.partial = b""
        self.answers = answers  # where answer() writes how far the lines were decided on
        self.answered = start

    def lines(self) -> list[bytes]:
        try:
            with self.path.open("rb") as file:
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *whole, self.partial = (self.partial + data).split(b"\n")
        if self.only is None:
            return [line for line in whole if line.strip()]
        return [line.rstrip(b"\r") for line in whole if line.startswith(self.only)]

    def answer(self) -> None:
        """Tell the writer that the lines read so far are decided on: their end offset, written
        atomically to the answers file (after the prune mark, so a reader that sees the answer
        sees the mark too)."""
        decided = self.offset - len(self.partial)
        if self.answers is not None and decided > self.answered:
            atomic_write_text(self.answers, str(decided))
            self.answered = decided


class Doorbell:
    """A named pipe the script's client writes a byte to after each report (HPO_WAKE_FILE), so
    the search reads the report at once rather than at its next look: should_prune() waits for
    the answer, and the wait is then the pruner's decision time, not up to POLL_SECONDS.

    In a temporary folder of its own, not the trial's (a pipe in runs/ would hang whatever
    copies or hashes the folder: DVC, a backup). Without named pipes (an odd filesystem) `path`
    is None and the search looks every POLL_SECONDS.
    """

    def __init__(self) -> None:
        self.folder: str | None = None
        self.path: str | None = None
        self.read_fd: int | None = None
        self.keep_fd: int | None = None
        try:  # a full or read-only /tmp: no doorbell, the trial runs all the same
            self.folder = tempfile.mkdtemp(prefix="hpo-doorbell-")
            self.path = os.path.join(self.folder, "wake")
            os.mkfifo(self.path, 0o600)
            self.read_fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
            # a writer of its own: without one, a pipe nobody writes to reads as EOF at once
            self.keep_fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            self.close()

    def wait(self, seconds: float) -> None:
        """Until the bell rings or `seconds` pass; the rings so far are drained. Only for a
        doorbell that has a pipe (`path` not None)."""
        ready, _, _ = select.select([self.read_fd], [], [], seconds)
        if ready:
            try:
                while os.read(self.read_fd, 4096):
                    pass
            except BlockingIOError:
                pass  # drained

    def close(self) -> None:
        for fd in (self.read_fd, self.keep_fd):
            if fd is not None:
                os.close(fd)
        self.read_fd = self.keep_fd = self.path = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


class Watch:
    """The running command: its reports to the driver, and the signals that stop it."""

    def __init__(
        self,
        process: subprocess.Popen,
        kill_after: float,
        prune_mark: Path,
        doorbell: Doorbell | None = None,
    ) -> None:
        self.process, self.kill_after, self.prune_mark = process, kill_after, prune_mark
        self.doorbell = doorbell
        self.ending: EndState | None = None  # "pruned" or "interrupted" once decided
        self.decided_at = 0.0
        self.signalled_at: float | None = None  # when SIGTERM or SIGINT went
        self.decision = CONTINUE  # the pruner's, once it stopped the trial

    def run(self, reporter: Any, state: TrialState, *tails: Tail) -> EndState | None:
        """Serve the command until it exits; "pruned", "interrupted" or None (it ended)."""
        while True:
            exited = self.process.poll() is not None
            for tail in tails:  # after the exit too: the last reports are read
                for line in tail.lines():
                    report = state.parse(line)
                    if report is not None and self.ending is None:
                        self._hand_over(reporter, *report, state)
                tail.answer()
            if exited:
                return self.ending
            if self.ending is None and stop_requested(reporter):
                self._interrupt()
            self._escalate(state)
            self._pause()

    def _pause(self) -> None:
        """Until the next look: the doorbell (a report) or POLL_SECONDS, or the process's exit."""
        if self.doorbell is not None and self.doorbell.path is not None:
            self.doorbell.wait(POLL_SECONDS)
            return
        try:
            self.process.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            pass

    def _hand_over(
        self, reporter: Any, step: int, metrics: dict[str, float], state: TrialState
    ) -> None:
        try:
            reporter.report(step, metrics)
            if reporter.should_stop():
                self.ending, self.decided_at = "pruned", time.monotonic()
                self.decision = pruned_at(step)
                self.prune_mark.touch()  # SIGTERM follows (_escalate)
        except TrialInterrupted:  # the search is stopping (in this process: its report says)
            self._interrupt()

    def _interrupt(self) -> None:
        self.ending, self.decided_at = "interrupted", time.monotonic()
        self._signal(signal.SIGINT)

    def _escalate(self, state: TrialState) -> None:
        now = time.monotonic()
        if self.ending is None:
            return
        if self.signalled_at is None:  # pruned: SIGTERM, unless it stops itself in time
            wait = self.kill_after if state.stops_itself else STOPS_ITSELF_WAIT
            if now - self.decided_at >= min(wait, self.kill_after):
                self._signal(signal.SIGTERM)
        elif now - self.signalled_at >= self.kill_after:
            self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        self.signalled_at = time.monotonic()
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass  # it has just ended

    def kill(self) -> None:
        """Whatever happened (an error, a second Ctrl-C): nothing of the command goes on."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # also what it left in the background
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()


def stop_requested(reporter: Any) -> bool:
    """Whether the search is stopping: the StopSignals of the reporter of hpo.parallel and of
    its worker processes (reporter.stop). Ray's reporter has none: Ray stops its trials."""
    return bool(getattr(getattr(reporter, "stop", None), "requested", False))
