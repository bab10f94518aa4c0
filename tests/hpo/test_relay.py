"""hpo.relay: the one relay of a trial's reports and should_stop() from another process."""

from __future__ import annotations

import multiprocessing

from hpo.relay import RelayReporter, answer


class Reporter:
    def __init__(self, stop: bool) -> None:
        self.reports: list[tuple[int, dict]] = []
        self.stop = stop

    def report(self, step, metrics) -> None:
        self.reports.append((step, dict(metrics)))

    def should_stop(self) -> bool:
        return self.stop


def test_reports_arrive_as_plain_numbers_and_should_stop_is_answered():
    trial_end, search_end = multiprocessing.Pipe()
    relay, real = RelayReporter(trial_end), Reporter(stop=True)
    relay.report(3, {"val_loss": 1.5, "note": "text", "steps": 7})
    assert answer(search_end.recv(), real, search_end)
    assert real.reports == [(3, {"val_loss": 1.5, "steps": 7.0})]
    trial_end.send(("should_stop",))  # what relay.should_stop() sends before it waits
    assert answer(search_end.recv(), real, search_end)
    assert trial_end.recv() is True


def test_a_message_that_is_no_relayed_call_is_left_to_the_caller():
    trial_end, search_end = multiprocessing.Pipe()
    trial_end.send(("done", {"status": "complete"}))
    message = search_end.recv()
    assert not answer(message, Reporter(stop=False), search_end)
    assert message[1] == {"status": "complete"}


def test_a_peer_that_died_after_asking_is_no_error_while_answering():
    trial_end, search_end = multiprocessing.Pipe()
    trial_end.close()
    assert answer(("should_stop",), Reporter(stop=True), search_end)
