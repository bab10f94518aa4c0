"""hpo.trial_worker: the side of a --parallel worker process; its reporter, in this process."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from hpo.drivers.base import TrialInterrupted
from hpo.interrupts import StopSignals
from hpo.trial_worker import WorkerReporter


def test_a_worker_trial_relays_its_reports_until_the_search_stops():
    trial_end, search_end = multiprocessing.Pipe()
    stop = StopSignals()  # not installed: only request() stops, as the relayed SIGINT would
    reporter = WorkerReporter(trial_end, 3, Path("trials/3"), {"lr": 0.1}, None, stop)
    assert (reporter.number, reporter.dir, reporter.params) == (3, Path("trials/3"), {"lr": 0.1})
    reporter.report(1, {"val_loss": 2.0})
    assert search_end.recv() == ("report", 1, {"val_loss": 2.0})
    stop.request()
    with pytest.raises(TrialInterrupted, match="interrupted at step 2"):
        reporter.report(2, {"val_loss": 1.0})
    assert not search_end.poll()  # nothing relayed once the search is stopping
