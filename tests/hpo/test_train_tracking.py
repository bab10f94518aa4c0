"""`hpo train` as one MLflow run when tracking is on (hpo.train_tracking), in a real SQLite store."""

from __future__ import annotations

import random

import pytest
import yaml

from hpo.cli import main


def write_experiment(tmp_path, **train):
    rng = random.Random(0)
    words = "the quick brown fox jumps over a lazy dog".split()
    corpus = "\n\n".join(" ".join(rng.choice(words) for _ in range(30)) for _ in range(60))
    (tmp_path / "corpus.txt").write_text(corpus)
    experiment = {
        "name": "tracked",
        "data": {"path": "corpus.txt", "tokenizer": "char", "block_size": 32, "min_doc_chars": 1},
        "model": {"n_layer": 1, "n_head": 2, "n_embd": 32},
        "train": {"max_steps": 4, "per_device_train_batch_size": 4, "logging_steps": 2, **train},
        "eval": {"eval_steps": 2, "max_eval_batches": 2, "sample_tokens": 0},
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(experiment))
    return str(tmp_path / "exp.yaml")


@pytest.mark.slow  # creating the SQLite store (MLflow's migrations) takes most of a minute here
def test_hpo_train_with_a_tracking_uri_makes_one_finished_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["train", "--config", write_experiment(tmp_path), "--output", "out", "--quiet"]
    assert main([*args, "--tracking-uri", uri]) == 0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tracked")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["train.max_steps"] == "4"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [2, 4]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [2, 4]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "result.json", "lr.png", "grad_norm.png"} <= artifacts


@pytest.mark.slow
def test_hpo_train_is_not_tracked_without_a_uri_or_with_report_to_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    experiment = write_experiment(tmp_path, max_steps=2)
    assert main(["train", "--config", experiment, "--output", "a", "--quiet"]) == 0
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    args = ["train", "--config", experiment, "--output", "b", "--quiet", "--tracking-uri", uri]
    assert main([*args, "-o", "train.report_to=none"]) == 0
    assert not list(tmp_path.glob("*.db")) and (tmp_path / "a" / "result.json").is_file()


def test_an_older_result_json_is_logged_with_todays_state(tmp_path):
    from hpo.tracking.mlflow_tracker import RUN_STATUS
    from hpo.train_tracking import _state

    (tmp_path / "result.json").write_text('{"status": "completed"}')  # an older version's word
    assert _state(tmp_path / "result.json") == "complete"
    assert RUN_STATUS[_state(tmp_path / "result.json")] == "FINISHED"
    assert _state(tmp_path / "missing.json") == "failed"
