"""The tracking server goes away mid-study: training goes on, every metric arrives once, later."""

from __future__ import annotations

import time

import pytest
from mlflow_server import shared_server

from hpo.drivers.base import StudySpec, TrialRecord
from hpo.study import finish_study, open_study, previous_trials, write_trial
from hpo.tracking import MlflowTracker
from hpo.tracking.mlflow_tracker import PENDING_FILE

pytestmark = pytest.mark.service


@pytest.fixture
def server():
    return shared_server()


@pytest.fixture(autouse=True)
def fail_fast(monkeypatch):
    """One attempt per request: the tracker's buffer does the retrying (MLflow's own default is 7
    attempts with a growing delay, which only makes an outage take longer to notice)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def start(server, space, tmp_path, experiment, resume=False):
    tracker = MlflowTracker(
        server.uri,
        experiment_name=experiment,
        system_metrics=False,
        flush_interval=0.1,
        close_timeout=2.0,
    )
    study = StudySpec.for_space(space, name="s", runs=tmp_path / "runs", resume=resume)
    open_study(study, space, "random", previous_trials(study, space))
    tracker.start_study(space, study, "random")
    return tracker, study


def log_steps(tracker, number, steps):
    for step in steps:
        tracker.log_metrics(number, step, {"loss": 1.0 / (step + 1), "lr": 1e-3})


def end(tracker, study, number, steps):
    record = TrialRecord(
        number, {"lr": 0.01, "y": 0.1}, "complete", values=[1.0], steps=steps, started=time.time()
    )
    write_trial(study.dir, record)
    tracker.end_trial(record)


def assert_each_step_once(server, experiment, trials, steps):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`hpo.trial` != ''")
    assert sorted(int(r.data.tags["hpo.trial"]) for r in runs) == trials
    for run in runs:
        for key in ("loss", "lr"):
            history = client.get_metric_history(run.info.run_id, key)
            assert sorted(m.step for m in history) == list(steps), (run.info.run_name, key)
        assert run.info.status == "FINISHED"


def test_metrics_logged_while_the_server_is_down_arrive_once_when_it_is_back(
    server, make_space, tmp_path
):
    space = make_space("random", trials=2)
    tracker, study = start(server, space, tmp_path, "outage")
    tracker.start_trial(0, {"lr": 0.01, "y": 0.1})
    log_steps(tracker, 0, range(0, 100))
    assert tracker.flush(30)

    server.stop()
    began = time.perf_counter()
    log_steps(tracker, 0, range(100, 200))
    tracker.start_trial(1, {"lr": 0.02, "y": 0.2})  # a trial that starts during the outage
    log_steps(tracker, 1, range(0, 200))
    end(tracker, study, 0, 199)
    assert time.perf_counter() - began < 1.0  # training never waits for the store
    assert not tracker.flush(1.0) and tracker.buffer.in_outage

    server.start()
    assert tracker.flush(60)
    end(tracker, study, 1, 199)
    tracker.end_study(finish_study(study, space, "random", 1.0, "budget"))
    assert_each_step_once(server, "outage", [0, 1], range(200))


def test_what_the_end_of_a_study_could_not_send_is_sent_when_it_resumes(
    server, make_space, tmp_path
):
    space = make_space("random", trials=3)
    tracker, study = start(server, space, tmp_path, "spill")
    tracker.start_trial(0, {"lr": 0.01, "y": 0.1})
    log_steps(tracker, 0, range(0, 50))
    assert tracker.flush(30)
    server.stop()
    log_steps(tracker, 0, range(50, 100))
    end(tracker, study, 0, 99)
    tracker.end_study(finish_study(study, space, "random", 1.0, "budget"))  # waits 2 s, saves
    assert (study.dir / PENDING_FILE).is_file()

    server.start()
    resumed, study = start(server, space, tmp_path, "spill", resume=True)
    assert not (study.dir / PENDING_FILE).exists()
    resumed.start_trial(1, {"lr": 0.02, "y": 0.2})
    log_steps(resumed, 1, range(100))
    end(resumed, study, 1, 99)
    resumed.end_study(finish_study(study, space, "random", 1.0, "budget"))
    assert_each_step_once(server, "spill", [0, 1], range(100))
