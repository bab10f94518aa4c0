"""What runs in the driver's process: Ray's trial events become trial.json files and tracker calls.

A tune Callback, which Ray runs in the driver process, relays each trial's start, results and
end to StudyEvents: it writes trials/<n>/trial.json (through hpo.study), calls the Tracker and
counts trials against the budget. The searcher reads those counts through live_events.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.drivers.base import FINISHED_STATES, StudySpec, Tracker, TrialRecord
from hpo.drivers.ray_tune.domains import trial_params
from hpo.parallel import interrupted_at_step, objective_values, resumed_from_step
from hpo.space import SearchSpace
from hpo.study import INTERRUPTED, trial_dir, write_trial

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
    """The driver-process side of the trials: trial.json files, tracker calls, budget counts."""

    def __init__(
        self,
        space: SearchSpace,
        study: StudySpec,
        tracker: Tracker,
        previous: Sequence[TrialRecord],
    ) -> None:
        self.space, self.study, self.tracker = space, study, tracker
        self.key = str(study.dir.resolve())
        self.started = time.monotonic()
        self.settled = {r.number for r in previous if r.state != "interrupted"}
        # interrupted trials Tune runs again: from the step their last run saved (result.json)
        self.resumed_at = {
            r.number: interrupted_at_step(trial_dir(study.dir, r.number))
            for r in previous
            if r.state == "interrupted"
        }
        self.interrupted = {r.number: r for r in previous if r.state == "interrupted"}
        self.stop: Any = None  # the driver's StopSignals
        self.finished = sum(1 for r in previous if r.state in FINISHED_STATES)
        self.failed = 0  # in this run: as many failures as budget.trials end the study
        self.ended = 0  # trials ended in this run
        self.running: dict[int, TrialRecord] = {}
        self.last_value: dict[int, float] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def stop_requested(self) -> bool:
        return self.stop is not None and self.stop.requested

    def why_stop(self) -> str | None:
        if self.stop_requested():
            return "interrupted"
        budget = self.space.budget
        if budget.timeout is not None and self.elapsed() >= budget.timeout:
            return "timeout"
        if budget.trials is not None and self.failed >= budget.trials:
            return "failures"
        if budget.trials is not None and self.finished >= budget.trials:
            return "budget"
        return None

    def start(self, number: int, params: dict[str, Any]) -> TrialRecord | None:
        if number in self.settled:
            return None
        if number not in self.running:  # PBT and HyperBand restart trials: one start each
            self.running[number] = TrialRecord(number, params, started=time.time())
            write_trial(self.study.dir, self.running[number])
            self.tracker.start_trial(number, params)
        return self.running[number]

    def result(self, number: int, params: dict[str, Any], result: Mapping[str, Any]) -> None:
        record = self.start(number, params)
        if record is None:
            return
        for step, metrics in json.loads(result.get("hpo_reports", "[]")):
            record.steps = max(record.steps, step)
            self.tracker.log_metrics(number, step, metrics)
        value = result.get(self.space.objective.metric)
        if "hpo_state" not in result and isinstance(value, float) and math.isfinite(value):
            self.last_value[number] = value

    def end(
        self, number: int, params: dict[str, Any], last: Mapping[str, Any], error: str | None
    ) -> None:
        record = self.start(number, params)
        if record is None:
            return
        record.params = params  # PBT changes them as the trial goes
        stopped = self.stop_requested() and last.get("hpo_state") != "complete"
        if error == INTERRUPTED or stopped:  # Tune stopped it for Ctrl-C: resumable
            record.state, record.reason = "interrupted", INTERRUPTED
        elif error is not None:
            record.state, record.reason = "failed", error
        elif last.get("hpo_state") == "complete":
            values = json.loads(last["hpo_values"])
            record.values, record.reason = objective_values(values, self.space.objectives)
            record.state = "failed" if record.reason else "complete"
        else:
            value = self.last_value.get(number)
            record.state, record.values = "pruned", None if value is None else [value]
            timeout, scheduler = self.space.budget.timeout, self.space.driver_options["scheduler"]
            if timeout and self.elapsed() >= timeout:
                record.reason = f"stopped by the study's timeout at step {record.steps}"
            elif scheduler in ("auto", "none"):  # the objective stopped (Optuna's pruner asked)
                record.reason = f"pruned at step {record.steps}"  # as --driver optuna says
            else:
                record.reason = f"stopped by Ray's {scheduler} scheduler at step {record.steps}"
        record.duration = time.time() - record.started
        if number in self.resumed_at:
            directory = trial_dir(self.study.dir, number)
            record.resumed_from_step = resumed_from_step(directory, self.resumed_at[number])
        del self.running[number]
        write_trial(self.study.dir, record)  # before Ray saves its state: restores never rerun it
        if record.state != "interrupted":  # Tune's restore runs an interrupted one again
            self.settled.add(number)
        self.ended += 1
        self.finished += record.state in FINISHED_STATES
        self.failed += record.state == "failed"
        self.tracker.end_trial(record)

    def fail_unrestored(self) -> None:
        """Interrupted trials the restored experiment did not run again (Tune's saved state,
        written every few seconds, lagged behind a kill -9 and never knew them): failed."""
        for number, record in self.interrupted.items():
            if number not in self.settled and number not in self.running:
                record.state, record.reason = "failed", INTERRUPTED
                write_trial(self.study.dir, record)
                self.settled.add(number)

    def interrupt(self) -> None:
        """The trials still running when the search stopped end interrupted."""
        for number, record in list(self.running.items()):
            self.end(number, record.params, {}, INTERRUPTED)


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
