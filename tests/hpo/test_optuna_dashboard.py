"""What optuna-dashboard shows of a study: read from the study's own journal file, as the
dashboard reads it (`optuna-dashboard runs/<study>/optuna.journal`), the metric names and the
user attrs that link each trial back to its folder, its end and its MLflow run."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from hpo.drivers.base import TrialPruned

STEPS = 6


def curve(params, reporter):
    """val_loss = y + 1/step; trial 1 prunes itself, trial 2 fails."""
    for step in range(1, STEPS + 1):
        reporter.report(step, {"val_loss": params["y"] + 1.0 / step, "loss": 9.0})
        if reporter.number == 1 and step == 2:
            raise TrialPruned("pruned at step 2")
    if reporter.number == 2:
        raise RuntimeError("diverged")
    return params["y"] + 1.0 / STEPS


def journal_study(result):
    """The study as optuna-dashboard opens a journal file path."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(result.dir / "optuna.journal")))
    return optuna.load_study(study_name=result.study, storage=storage)


def test_the_journal_holds_metric_names_and_user_attrs_linking_each_trial_back(
    make_space, run_search
):
    space = make_space(
        "optuna", {"y": {"type": "float", "low": 0.0, "high": 1.0}}, trials=3, sampler="random"
    )
    result = run_search(space, curve)
    study = journal_study(result)

    assert study.metric_names == ["val_loss"]  # the dashboard's axis, not "Objective Value"
    trials = {t.number: t for t in study.trials}
    assert [trials[n].state.name for n in range(3)] == ["COMPLETE", "PRUNED", "FAIL"]
    for number, trial in trials.items():
        folder = Path(trial.user_attrs["trial_dir"])
        assert folder == (result.dir / "trials" / str(number)).resolve()
        assert json.loads((folder / "trial.json").read_text())["number"] == number
        assert "mlflow_run_id" not in trial.user_attrs  # not tracked: nothing to link to
    assert trials[1].user_attrs["reason"] == "pruned at step 2"
    assert "diverged" in trials[2].user_attrs["reason"]


@pytest.mark.service
def test_a_tracked_trial_names_its_mlflow_run(make_space, run_search, request):
    from mlflow.tracking import MlflowClient
    from mlflow_server import shared_server

    from hpo.tracking import MlflowTracker

    server = shared_server()
    tracker = MlflowTracker(
        server.uri, experiment_name=request.node.name, system_metrics=False, flush_interval=0.1
    )

    def slow_curve(params, reporter):  # the run is created while the trial runs
        time.sleep(1.0)
        return curve(params, reporter)

    space = make_space("optuna", {"y": {"type": "float", "low": 0.0, "high": 1.0}}, trials=2)
    result = run_search(space, slow_curve, tracker=tracker)
    client = MlflowClient(server.uri)
    for trial in journal_study(result).trials:
        run = client.get_run(trial.user_attrs["mlflow_run_id"])
        assert run.data.tags["hpo.trial"] == str(trial.number)
        assert trial.user_attrs["mlflow_run_url"] == (
            f"{server.uri}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"
        )


@pytest.mark.service
def test_optuna_dashboard_serves_the_journal_file(make_space, run_search, tmp_path):
    """The README's command, run for real: the dashboard lists the study with its metric."""
    from browser import start_optuna_dashboard, stop
    from mlflow_server import free_port

    space = make_space("optuna", {"y": {"type": "float", "low": 0.0, "high": 1.0}}, trials=2)
    result = run_search(space, curve)
    port = free_port()
    process = start_optuna_dashboard(str(result.dir / "optuna.journal"), port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as r:
            studies = json.load(r)["study_summaries"]
        assert [s["study_name"] for s in studies] == [result.study]
        url = f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}"
        with urllib.request.urlopen(url, timeout=10) as r:
            detail = json.load(r)
        assert detail["objective_names"] == ["val_loss"]  # from study.set_metric_names
        assert all("trial_dir" in {a["key"] for a in t["user_attrs"]} for t in detail["trials"])
    finally:
        stop(process)
