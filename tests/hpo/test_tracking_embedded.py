"""MLflow's embedded default store: sqlite:///mlflow.db in the current folder, nothing to set up."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from hpo.drivers.base import StudySpec, TrialRecord
from hpo.study import finish_study, open_study
from hpo.tracking import MlflowTracker

OTHER_WRITER = """
import sys, time
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
client = MlflowClient(sys.argv[1])
run = client.create_run(client.create_experiment("other-process"))
for i in range(40):
    client.log_batch(run.info.run_id, metrics=[
        Metric("x", float(s), int(time.time() * 1000), i * 250 + s) for s in range(250)])
"""


@pytest.mark.slow
def test_the_default_store_is_sqlite_mlflow_db_in_the_current_folder(
    make_space, tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    space = make_space("random", trials=1)
    study = StudySpec.for_space(space, name="s", runs=tmp_path / "runs")
    open_study(study, space, "random", [])
    tracker = MlflowTracker(system_metrics=False)
    tracker.start_study(space, study, "random")
    tracker.start_trial(0, {"lr": 0.01, "y": 0.1})
    tracker.log_metrics(0, 1, {"loss": 2.0})
    tracker.end_trial(TrialRecord(0, {"lr": 0.01, "y": 0.1}, "complete", values=[1.0], steps=1))
    tracker.end_study(finish_study(study, space, "random", 1.0, "budget"))

    assert tracker.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert (tmp_path / "mlflow.db").is_file()
    client = MlflowClient(tracker.tracking_uri)
    experiment = client.get_experiment_by_name("test_space")  # the space's name: no experiment file
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["s", "trial 0"]
    assert {r.info.status for r in runs} == {"FINISHED"}


@pytest.mark.slow
def test_parallel_trials_and_another_process_share_one_sqlite_file_without_losing_a_metric(
    make_space, tmp_path, monkeypatch
):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    space = make_space("random", trials=4)
    study = StudySpec.for_space(space, name="s", runs=tmp_path / "runs")
    open_study(study, space, "random", [])
    tracker = MlflowTracker(uri, system_metrics=False, flush_interval=0.05)
    tracker.start_study(space, study, "random")  # creates the tables before the other writer
    other = subprocess.Popen([sys.executable, "-c", OTHER_WRITER, uri])
    for number in range(4):
        tracker.start_trial(number, {"lr": 0.01, "y": number / 10})
    for step in range(500):
        for number in range(4):
            tracker.log_metrics(number, step, {"loss": step + number, "lr": 1e-3, "grad_norm": 1.0})
        if step % 50 == 0:
            time.sleep(0.05)  # reports spread over the other process's writes
    for number in range(4):
        tracker.end_trial(
            TrialRecord(number, {"lr": 0.01, "y": number / 10}, "complete", values=[1.0], steps=499)
        )
    stats = tracker.buffer.stats
    tracker.end_study(finish_study(study, space, "random", 1.0, "budget"))
    assert other.wait(timeout=120) == 0

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("test_space")
    children = client.search_runs([experiment.experiment_id], "tags.`hpo.trial` != ''")
    assert len(children) == 4
    for child in children:
        for key in ("loss", "lr", "grad_norm"):
            assert len(client.get_metric_history(child.info.run_id, key)) == 500
    assert stats.metrics_dropped == 0
