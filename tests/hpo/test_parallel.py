"""--parallel K: trials in worker processes, a crash ends one trial, never the study."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from hpo.drivers.algorithm_suggester import AlgorithmSuggester
from hpo.drivers.base import CONTINUE, Decision, NullTracker, StudySpec, TrialPruned
from hpo.parallel import run_study
from hpo.study import INTERRUPTED, read_study
from hpo.suggesters.random import RandomDraws
from runner.errors import UserInputError


def crashing(params, reporter):
    """Trial 1 segfaults, trial 2 exits hard; the others report twice and return."""
    if reporter.number == 1:
        os.kill(os.getpid(), signal.SIGSEGV)
    if reporter.number == 2:
        print("about to exit", flush=True)
        os._exit(3)
    reporter.report(1, {"val_loss": 2.0})
    reporter.report(5, {"val_loss": 1.0})
    assert reporter.should_stop() is False
    return params["y"]


@pytest.mark.slow
def test_a_segfault_or_hard_exit_fails_that_trial_and_the_study_finishes(make_space, run_search):
    result = run_search(make_space("random", trials=4), crashing, parallel=2)
    failed = {t.number: t.reason for t in result.trials if t.state == "failed"}
    assert set(failed) == {1, 2}
    assert "killed by SIGSEGV" in failed[1] and "exited with code 3" in failed[2]
    assert result.count("complete") == 4 and result.stop_reason == "budget"
    assert "about to exit" in (result.dir / "trials" / "2" / "output.log").read_text()
    assert all(t.steps == 5 for t in result.trials if t.state == "complete")


@pytest.mark.slow
def test_one_isolated_worker_also_survives_a_crash(make_space, run_search):
    result = run_search(make_space("random", trials=3), crashing, parallel=1, isolate=True)
    assert [t.state for t in result.trials] == [
        "complete",
        "failed",
        "failed",
        "complete",
        "complete",
    ]


def sleeper(params, reporter):
    started = time.time()
    time.sleep(1.0)
    (reporter.dir / "times.json").write_text(json.dumps([started, time.time()]))
    return params["y"]


@pytest.mark.slow
def test_parallel_trials_run_at_the_same_time(make_space, run_search):
    result = run_search(make_space("random", trials=2), sleeper, parallel=2)
    (a0, a1), (b0, b1) = (
        json.loads((result.dir / "trials" / n / "times.json").read_text()) for n in ("0", "1")
    )
    overlap = min(a1, b1) - max(a0, b0)
    assert overlap > 0.8  # two 1-second sleeps ran side by side, not one after the other


class RecordingTracker(NullTracker):
    def __init__(self):
        self.calls = []

    def start_trial(self, number, params):
        self.calls.append(("start", number))

    def log_metrics(self, number, step, metrics):
        self.calls.append(("metrics", number, step, metrics["val_loss"]))

    def end_trial(self, record):
        self.calls.append(("end", record.number, record.state))


def test_worker_reports_reach_the_tracker_in_the_driver_process(make_space, run_search):
    tracker = RecordingTracker()
    run_search(make_space("random", trials=1), crashing, parallel=2, isolate=True, tracker=tracker)
    assert tracker.calls == [
        ("start", 0),
        ("metrics", 0, 1, 2.0),
        ("metrics", 0, 5, 1.0),
        ("end", 0, "complete"),
    ]


def stops_when_asked(params, reporter):
    """A learning curve that ends at y; it obeys the pruner."""
    for step in range(1, 9):
        reporter.report(step, {"val_loss": params["y"] + 1.0 / step})
        if reporter.should_stop():
            raise TrialPruned(f"pruned at step {step}")
    return params["y"]


@pytest.mark.slow
def test_pruning_decisions_reach_trials_in_workers(make_space, run_search):
    space = make_space(
        "optuna", trials=8, sampler="random", pruner="median", pruner_startup_trials=2
    )
    result = run_search(space, stops_when_asked, parallel=2)
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert pruned and all(t.steps < 8 for t in pruned)


def test_an_objective_that_cannot_be_sent_to_a_worker_is_a_user_error(
    make_space, run_search, tmp_path
):
    with pytest.raises(UserInputError, match="cannot be sent to a worker process"):
        run_search(make_space("random", trials=2), lambda params, reporter: 0.0, parallel=2)
    assert not (tmp_path / "runs").exists()


def interrupted(params, reporter):
    if reporter.number == 1:
        raise KeyboardInterrupt
    return params["y"]


def test_keyboard_interrupt_marks_the_running_trial_interrupted_and_writes_the_summary(
    make_space, run_search, tmp_path
):
    with pytest.raises(KeyboardInterrupt):
        run_search(make_space("random", trials=4), interrupted)
    study = tmp_path / "runs" / "s"
    trial = json.loads((study / "trials" / "1" / "trial.json").read_text())
    assert trial["state"] == "interrupted" and trial["reason"] == INTERRUPTED
    summary = json.loads((study / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["n_trials"]["complete"] == 1


def short_sleep(params, reporter):
    time.sleep(0.2)
    return params["y"]


def test_timeout_stops_starting_trials_and_lets_the_running_one_finish(make_space, run_search):
    result = run_search(make_space("random", trials=None, timeout=0.5), short_sleep)
    assert result.stop_reason == "timeout"
    assert 2 <= len(result.trials) <= 4 and result.count("complete") == len(result.trials)


def test_live_view_shows_each_trial_and_the_best_so_far(make_space, run_search, capsys):
    run_search(make_space("random", trials=2), short_sleep, quiet=False)
    err = capsys.readouterr().err
    assert "trial   0 complete val_loss=" in err and "best " in err and "[2/2" in err
    assert "study s ended (budget): 2 complete, 0 pruned, 0 failed; best trial" in err


@pytest.mark.slow
def test_status_and_best_read_back_from_the_files(make_space, run_search):
    result = run_search(make_space("random", trials=3), crashing, parallel=2)
    status = read_study(result.dir)
    assert status.counts == {
        "running": 0,
        "complete": 3,
        "pruned": 0,
        "failed": 2,
        "interrupted": 0,
    }
    assert status.best.number == result.best.number and status.driver == "random"
    assert status.summary["best_trial"] == result.best.number
    with pytest.raises(UserInputError, match="no study here"):
        read_study(result.dir / "nope")


class StopsAtStepTwo(AlgorithmSuggester):
    """A suggester whose scheduler stops every trial once it reported step 2, saying why."""

    def report(self, suggestion, step, value) -> None:
        self.last_step = step

    def decide(self, suggestion) -> Decision:
        if getattr(self, "last_step", 0) >= 2:
            return Decision(
                stop=True, reason=f"stopped by the test's scheduler at step {self.last_step}"
            )
        return CONTINUE


def returns_when_asked(params, reporter):
    for step in range(1, 6):
        reporter.report(step, {"val_loss": params["y"] + 1 / step})
        if reporter.should_stop():
            return params["y"] + 1 / step  # returns instead of raising: still pruned
    return params["y"]


def test_the_reason_of_a_suggesters_decision_is_the_pruned_trials_reason(make_space, tmp_path):
    space = make_space("random", trials=2)
    study = StudySpec.for_space(space, runs=tmp_path / "runs", quiet=True)
    result = run_study(
        "random",
        space,
        study,
        returns_when_asked,
        None,
        lambda previous: StopsAtStepTwo(RandomDraws(space, 0, ()), previous),
    )
    assert [t.state for t in result.trials] == ["pruned", "pruned"]
    assert {t.reason for t in result.trials} == {"stopped by the test's scheduler at step 2"}
    assert all(t.steps == 2 for t in result.trials)
