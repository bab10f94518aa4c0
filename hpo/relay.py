"""The one relay from the training side to the search side, across a process boundary.

A trial that trains in another process than the reporter it was given gets a RelayReporter:
its report() and should_stop() go over a multiprocessing Connection, and the process at the
other end answers each with the real reporter (answer), so trackers and pruners stay in one
process. Two places use it:

- a trial in a worker process of hpo.trial_processes.WorkerPool (--parallel K): the driver's
  process answers, where the suggester decides on pruning;
- rank 0 of a trial under torchrun (hpo.launch.run_distributed_trial): the trial's process
  answers over a local authenticated socket, with its own reporter (which may be a relay again).

Messages: ("report", step, {metric: float}) and ("should_stop",), answered by a bool. Any other
message is the caller's own (a trial's end). The standard library only.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

REPORT, SHOULD_STOP = "report", "should_stop"


class RelayReporter:
    """A Reporter (runner.reporting) whose calls the process at the other end of conn answers."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        plain = {str(k): float(v) for k, v in metrics.items() if isinstance(v, numbers.Real)}
        self.conn.send((REPORT, int(step), plain))

    def should_stop(self) -> bool:
        self.conn.send((SHOULD_STOP,))
        return self.conn.recv()


def answer(message: tuple, reporter: Any, conn: Any) -> bool:
    """Serve one relayed call with the real reporter; False when the message is not one."""
    if message[0] == REPORT:
        reporter.report(message[1], message[2])
    elif message[0] == SHOULD_STOP:
        try:
            conn.send(bool(reporter.should_stop()))
        except OSError:
            pass  # the other process died after asking: the caller's next recv() sees it
    else:
        return False
    return True
