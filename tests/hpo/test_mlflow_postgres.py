"""MLflow at scale: a search tracked by an `mlflow server` whose backend store is PostgreSQL."""

from __future__ import annotations

import pytest
from mlflow_server import MlflowServer

from hpo.drivers import get_driver
from hpo.drivers.base import StudySpec
from hpo.space import space_from_dict
from hpo.tracking import MlflowTracker

pytestmark = pytest.mark.service
TRIALS = 3


def two_step_bowl(params, reporter):
    for step in (1, 2):
        reporter.report(step, {"val_loss": params["x"] + 1.0 / step})
    return params["x"]


def test_a_search_tracked_by_a_server_on_postgresql_logs_its_study_and_every_trial(
    tmp_path, postgres_url
):
    from mlflow.tracking import MlflowClient

    server = MlflowServer(tmp_path / "mlflow")
    server.backend = postgres_url  # instead of its sqlite file
    space = space_from_dict(
        {
            "budget": {"trials": TRIALS},
            "driver": {"seed": 0},
            "params": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
        },
        source="scale.yaml",
        driver="optuna",
    )
    study = StudySpec.for_space(space, runs=tmp_path / "runs", quiet=True)
    with server:
        tracker = MlflowTracker(server.uri, system_metrics=False, flush_interval=0.2)
        result = get_driver("optuna").run(space, study, two_step_bowl, tracker)
        client = MlflowClient(server.uri)
        experiment = [tracker.experiment_id]
        (parent,) = client.search_runs(experiment, "tags.`hpo.role` = 'study'")
        children = client.search_runs(
            experiment, f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
        )
        history = client.get_metric_history(children[0].info.run_id, "val_loss")
        parent_files = {f.path for f in client.list_artifacts(parent.info.run_id)}

    assert result.count("complete") == TRIALS
    assert parent.info.status == "FINISHED" and parent.data.metrics["study_n_complete"] == TRIALS
    assert sorted(int(r.data.tags["hpo.trial"]) for r in children) == list(range(TRIALS))
    assert {r.info.status for r in children} == {"FINISHED"}
    by_trial = {int(r.data.tags["hpo.trial"]): r for r in children}
    assert {n: float(by_trial[n].data.params["x"]) for n in by_trial} == {
        t.number: t.params["x"] for t in result.trials
    }
    assert [m.step for m in history] == [1, 2]
    assert {"summary.json", "best_params.yaml"} <= parent_files
    assert list(
        (tmp_path / "mlflow" / "artifacts").rglob("summary.json")
    )  # --artifacts-destination

    import psycopg

    with psycopg.connect(postgres_url) as connection:  # the runs live in PostgreSQL
        (runs,) = connection.execute(
            "SELECT count(*) FROM runs WHERE experiment_id = %s", (int(tracker.experiment_id),)
        ).fetchone()
    assert runs == 1 + TRIALS
