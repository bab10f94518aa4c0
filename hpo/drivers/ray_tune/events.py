"""What runs in the driver's process: Ray's trial events, told to the study's TrialBook.

A tune Callback, which Ray runs in the driver process, relays each trial's start, results and
end to StudyEvents, which keeps them in the TrialBook the local loop keeps its trials in
(hpo.trial_book: trial.json, tracker calls, the budget's counts) and says how a Ray trial ended.
The searcher reads the book through live_events.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.drivers.base import TrialRecord
from hpo.drivers.ray_tune.domains import trial_params
from hpo.study import INTERRUPTED, write_trial
from hpo.trial_book import BookedTrial, TrialBook
from runner.outcome import Outcome

_LIVE: dict[str, StudyEvents] = {}  # study key -> its events while a fit runs


@contextlib.contextmanager
def live_study(events: StudyEvents) -> Iterator[None]:
    """Make `events` what the study's callback and searcher reach while a Tuner.fit runs."""
    _LIVE[events.key] = events
    try:
        yield
    finally:
        del _LIVE[events.key]


def live_events(key: str) -> StudyEvents | None:
    # Callbacks and searchers reach _LIVE through this function only: cloudpickle copies the
    # globals a class it pickles by value refers to, and Ray pickles both with the experiment;
    # a module-level function of an importable module is pickled by name, so this one finds
    # the registry of the process it runs in.
    return _LIVE.get(key)


class StudyEvents:
    """Ray's trial events in the study's book; a trial that ended is never started again."""

    def __init__(self, book: TrialBook, previous: Sequence[TrialRecord]) -> None:
        self.book, self.space, self.study = book, book.space, book.study
        self.key = str(self.study.dir.resolve())
        self.settled = {r.number for r in previous if r.state != "interrupted"}

    def start(self, number: int, params: dict[str, Any]) -> BookedTrial | None:
        if number in self.settled:
            return None
        if number not in self.book.running:  # PBT and HyperBand restart trials: one start each
            interrupted = self.book.interrupted.get(number)  # continued from its last.pt
            trial = BookedTrial(number, params, self.study.dir, interrupted, bool(interrupted))
            self.book.start(trial)
        return self.book.running[number]

    def result(self, number: int, params: dict[str, Any], result: Mapping[str, Any]) -> None:
        trial = self.start(number, params)
        if trial is not None:
            for step, metrics in json.loads(result.get("hpo_reports", "[]")):
                self.book.report(trial, step, metrics)

    def end(
        self, number: int, params: dict[str, Any], last: Mapping[str, Any], error: str | None
    ) -> None:
        trial = self.start(number, params)
        if trial is None:
            return
        trial.params = params  # PBT changes them as the trial goes
        stopped = self.book.stop_requested() and last.get("hpo_state") != "complete"
        if error == INTERRUPTED or stopped:  # Tune stopped it for Ctrl-C: resumable
            outcome = Outcome("interrupted")
        elif error is not None:
            outcome = Outcome("failed", reason=error)
        elif last.get("hpo_state") == "complete":
            outcome = Outcome("complete", json.loads(last["hpo_values"]))
        else:
            outcome = Outcome("pruned", reason=self._stopped_by(trial.record.steps))
        # trial.json before Ray saves its state: restores never run it again
        if self.book.end(trial, outcome).state != "interrupted":  # Tune's restore reruns those
            self.settled.add(number)

    def _stopped_by(self, steps: int) -> str | None:
        """Why Ray ended a trial before it returned: the timeout, or Ray's scheduler (None:
        the objective stopped, as Optuna's pruner asked; "pruned at step N")."""
        timeout, scheduler = self.space.budget.timeout, self.space.driver_options["scheduler"]
        if timeout and self.book.elapsed() >= timeout:
            return f"stopped by the study's timeout at step {steps}"
        if scheduler in ("auto", "none"):
            return None
        return f"stopped by Ray's {scheduler} scheduler at step {steps}"

    def fail_unrestored(self) -> None:
        """Interrupted trials the restored experiment did not run again (Tune's saved state,
        written every few seconds, lagged behind a kill -9 and never knew them): failed."""
        for number, record in self.book.interrupted.items():
            if number not in self.settled and number not in self.book.running:
                record.state, record.reason = "failed", INTERRUPTED
                write_trial(self.study.dir, record)
                self.settled.add(number)

    def interrupt(self) -> None:
        """The trials still running when the search stopped end interrupted."""
        for number, trial in list(self.book.running.items()):
            self.end(number, trial.params, {}, INTERRUPTED)


def events_callback(key: str) -> Any:
    """A tune Callback relaying Ray's trial events to the study's StudyEvents."""
    from ray import tune

    class EventsCallback(tune.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.key = key

        def _relay(self, trial: Any) -> tuple[StudyEvents | None, int, dict[str, Any]]:
            events = live_events(self.key)
            if events is None:  # not the process running the study (Ray Client runs Tune remotely)
                return None, -1, {}
            return events, int(str(trial)), trial_params(events.space, trial.config)

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            events, number, params = self._relay(trial)
            if events:
                events.start(number, params)

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            events, number, params = self._relay(trial)
            if events:
                events.result(number, params, result)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            events, number, params = self._relay(trial)
            if events:
                events.end(number, params, trial.last_result or {}, None)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            events, number, params = self._relay(trial)
            if events:
                events.end(number, params, trial.last_result or {}, _error_reason(trial))

    return EventsCallback()


def _error_reason(trial: Any) -> str:
    """The exception the trial raised, as 'Type: message' (Ray wraps it in a RayTaskError)."""
    from ray import cloudpickle

    try:
        with open(trial.pickled_error_file, "rb") as f:
            error = cloudpickle.load(f)
    except Exception:  # no pickled error (an old Ray, a remote driver): Ray's text file
        lines = Path(trial.error_file).read_text().splitlines() if trial.error_file else []
        return next((line for line in reversed(lines) if line.strip()), "the trial failed in Ray")
    cause = getattr(error, "cause", None) or error
    if type(cause).__module__.startswith("ray."):  # the worker died: Ray's own words
        return str(cause).strip().splitlines()[0]
    return f"{type(cause).__name__}: {cause}"
