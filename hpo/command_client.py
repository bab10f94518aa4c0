"""What a training script run as a command trial uses to talk to the search (`hpo search --command`).

    import hpo
    for step in range(1, steps + 1):
        loss = train_one_step()
        hpo.report(step, {"val_loss": loss})   # to the search: the pruner decides on it
        if hpo.should_prune():                 # the search pruned this trial: stop
            break

The standard library only: `import hpo` in a training script imports neither torch, optuna,
ray nor mlflow, and costs a few milliseconds. The channel is files the search names in the
environment of the command: HPO_REPORT_FILE, a JSONL file each report is appended to as one
whole line (one write() on a file opened O_APPEND); HPO_PRUNE_FILE, a file the search creates
once its pruner has stopped the trial; HPO_ANSWER_FILE, where the search writes (atomically)
how many bytes of the report file it has read and decided on; and the doorbell below. No
socket, no library of the search's: the script may run in another virtual environment that has
only hpo itself (or, without hpo, print `hpo: {"step": 3, "val_loss": 1.2}` lines on stdout,
which count as reports too, unanswered).

Answers: should_prune() right after a report answers for that report, as Optuna's
trial.should_prune() does after trial.report(): it waits until the search has decided on it
(a report rings the search's doorbell, HPO_WAKE_FILE, a named pipe: the search reads it at
once, so the wait is the pruner's decision, about a millisecond; without the doorbell the
search looks every 50 ms) and then looks at the prune file. Without the wait a fast script
would train on past the evaluation its trial was pruned at. A search that does not answer within
ANSWER_WAIT seconds (it died, or hangs) is not waited for again; without HPO_ANSWER_FILE (an
older hpo) nothing is waited for; should_prune(wait=False) never waits.

Pruning: once the pruner decides, the search creates HPO_PRUNE_FILE and, half a second later,
sends SIGTERM to the command's process group (SIGKILL after the grace period, `kill_after`). A
script that called should_prune() or raise_when_pruned() stops itself: the search then waits
the grace period for it to exit before the SIGTERM. After raise_when_pruned(), hpo.report raises hpo.TrialPruned once
the trial is pruned; let it propagate (the trial is recorded pruned whatever the exit code), or
catch it to clean up first.

Outside a trial (HPO_REPORT_FILE not set, e.g. `python train.py` by hand) report() and
report_checkpoint() do nothing but warn once, should_prune() is False.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import time
import warnings
from collections.abc import Mapping

# The environment of a command trial (hpo.command_trial sets them)
REPORT_FILE_ENV = "HPO_REPORT_FILE"  # JSONL: one line per report, appended whole
PRUNE_FILE_ENV = "HPO_PRUNE_FILE"  # exists once the search has pruned the trial
ANSWER_FILE_ENV = "HPO_ANSWER_FILE"  # bytes of the report file the search has decided on
WAKE_FILE_ENV = "HPO_WAKE_FILE"  # a named pipe: a byte written there wakes the search up
# How long should_prune() waits for the search's answer to the last report. Generous: a busy
# search (its pruner on a shared database, its tracker logging) answers late, and a late answer
# costs only this wait, where a missed one costs a pruned trial's training.
ANSWER_WAIT = 10.0
ANSWER_POLL = 0.0005  # how often the answer file is read while waiting (a wait is ~1 ms)
# A line of the report file (and of `hpo: {...}` on stdout): {"step": 3, "val_loss": 1.2};
# {"checkpoint": "/abs/path"} names the trial's best checkpoint; {"stops_itself": true} says
# the script checks should_prune() (the search then waits before it sends SIGTERM).
STOPS_ITSELF = "stops_itself"
CHECKPOINT = "checkpoint"
STEP = "step"


class TrialPruned(Exception):  # noqa: N818 (the name Optuna users know)
    """The search pruned this trial.

    Raised by hpo.report (after hpo.raise_when_pruned()) in a command trial, and by an
    --objective function to end its trial pruned (after reporter.should_stop() said True).
    """


class _Channel:
    """The two files of the current trial, opened on first use (None outside a trial)."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.path: str | None = None
        self.prune_file: str | None = None
        self.answer_file: str | None = None
        self.wake_file: str | None = None
        self.wake_fd: int | None = None
        self.unanswered: int | None = None  # where the last report ends in the report file
        self.opened = False
        self.warned = False
        self.stops_itself = False
        self.raise_when_pruned = False

    def open(self) -> bool:
        if not self.opened:
            self.opened = True
            self.path = os.environ.get(REPORT_FILE_ENV) or None
            self.prune_file = os.environ.get(PRUNE_FILE_ENV) or None
            self.answer_file = os.environ.get(ANSWER_FILE_ENV) or None
            self.wake_file = os.environ.get(WAKE_FILE_ENV) or None
            if self.path is not None:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if self.fd is None and not self.warned:
            self.warned = True
            warnings.warn(
                f"hpo: not in a command trial ({REPORT_FILE_ENV} is not set): reports are "
                "dropped; run the script with `hpo search --command`",
                RuntimeWarning,
                stacklevel=3,
            )
        return self.fd is not None

    def write(self, record: Mapping[str, object]) -> None:
        from runner.files import append_whole  # standard library only, as this module

        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        # a whole line or none (a full disk cuts it back): the search never reads half a record
        append_whole(self.fd, line, self.path)

    def await_answer(self) -> None:
        """The report just written is one the next should_prune() waits for the answer to."""
        self.unanswered = os.lseek(self.fd, 0, os.SEEK_CUR)  # O_APPEND: the end of this line
        self.ring()

    def ring(self) -> None:
        """Wake the search up: it reads the report now, not at its next look."""
        if self.wake_file is None:
            return
        try:
            if self.wake_fd is None:
                self.wake_fd = os.open(self.wake_file, os.O_WRONLY | os.O_NONBLOCK)
            os.write(self.wake_fd, b"\n")
        except OSError:
            pass  # the search has gone (no reader), or the pipe is full: it is awake already

    def wait_for_answer(self) -> None:
        """Until the search has decided on the last report (or pruned the trial, or ANSWER_WAIT)."""
        if self.unanswered is None or self.answer_file is None:
            return
        deadline = time.monotonic() + ANSWER_WAIT
        while self.answered() < self.unanswered and not self.pruned():
            if time.monotonic() >= deadline:
                self.answer_file = None  # not waited for again
                warnings.warn(
                    f"hpo: the search did not answer a report within {ANSWER_WAIT:g} s; "
                    "should_prune() no longer waits for its answers",
                    RuntimeWarning,
                    stacklevel=4,
                )
                break
            time.sleep(ANSWER_POLL)
        self.unanswered = None

    def answered(self) -> int:
        try:
            with open(self.answer_file, "rb") as file:  # type: ignore[arg-type]
                return int(file.read() or 0)
        except (OSError, ValueError):
            return 0  # not written yet (the search writes it whole: never a part of a number)

    def mark_stops_itself(self) -> None:
        if not self.stops_itself and self.open():
            self.stops_itself = True
            self.write({STOPS_ITSELF: True})

    def pruned(self) -> bool:
        return self.prune_file is not None and os.path.exists(self.prune_file)


_channel = _Channel()


def report(step: int, metrics: Mapping[str, float]) -> None:
    """Report the metrics of one step (or evaluation) to the search.

    step: a whole number, growing (the pruner compares trials at the same step). metrics: names
    to numbers; a value that is not a finite number is left out. The trial's value is the best
    value of the space's objective metric over its reports (as for runner trials). Raises
    TrialPruned once the trial is pruned, after raise_when_pruned(); else it never raises for
    a pruned trial.
    """
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise TypeError(f"hpo.report: step must be a whole number, got {step!r}")
    if not isinstance(metrics, Mapping):
        raise TypeError(f"hpo.report: metrics must be a mapping of name to number, got {metrics!r}")
    if not _channel.open():
        return
    record: dict[str, object] = {STEP: int(step)}
    for name, value in metrics.items():
        if name in (STEP, CHECKPOINT, STOPS_ITSELF):
            raise ValueError(f"hpo.report: {name!r} is not a metric name hpo accepts")
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if math.isfinite(value):
                record[str(name)] = float(value)
    _channel.write(record)
    if len(record) > 1:  # a report the search decides on (one with no metric is not handed on)
        _channel.await_answer()
    if _channel.raise_when_pruned:
        _channel.wait_for_answer()
        if _channel.pruned():
            raise TrialPruned(f"pruned at step {int(step)}")


def should_prune(wait: bool = True) -> bool:
    """Whether the search has pruned this trial; the script should then stop (and exit).

    After a report it first waits for the search's decision on that report (about a
    millisecond; see the module doc), so its answer is for the last report; wait=False answers
    at once from what the search has decided so far. Calling it tells the search that the
    script stops itself: it then waits the grace period for the script to exit before it sends
    SIGTERM. False outside a trial.
    """
    if not _channel.open():
        return False
    _channel.mark_stops_itself()
    if wait:
        _channel.wait_for_answer()
    return _channel.pruned()


def raise_when_pruned() -> None:
    """From now on hpo.report raises hpo.TrialPruned once the search has pruned this trial.

    Like should_prune(), it tells the search that the script stops itself.
    """
    _channel.raise_when_pruned = True
    _channel.mark_stops_itself()


def report_checkpoint(path: str | os.PathLike[str]) -> None:
    """Name the trial's best checkpoint (a file or a folder), instead of HPO_TRIAL_DIR/checkpoints/best.

    The latest call wins. When the trial ends complete, the search copies it to the trial's
    checkpoints/best (so it must still exist then); the best trial's is promoted to the study's
    best/ and registered with MLflow. A relative path is relative to the current folder.
    """
    if not _channel.open():
        return
    _channel.write({CHECKPOINT: os.path.abspath(os.fspath(path))})
