"""`hpo train` in MLflow: one run per trial, when tracking is on.

Tracking is on when `hpo train` gets --tracking-uri or $MLFLOW_TRACKING_URI is set, and the
config's train.report_to includes mlflow (its default). The store is opened before training
(a server that does not answer is refused before any work); the run is written when the trial
ends, from its folder: the config as params, every train/eval/epoch record of metrics.jsonl as
metrics at its step, the trial's state (tag hpo.state and the run's status, as a search's trial
runs: hpo.tracking.mlflow_tracker.RUN_STATUS), and config.yaml, result.json and the lr/grad_norm
plots as artifacts. So a `hpo train --nproc N` run is logged once, by the launching process.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from runner.config import TrialConfig, config_to_dict, flatten, report_destinations
from runner.outcome import read_state

ARTIFACTS = ("config.yaml", "result.json", "lr.png", "grad_norm.png")
# metrics.jsonl records logged, and the prefix their fields take in MLflow (eval's are val_*)
LOGGED_RECORDS = {"train": "train_", "eval": "", "epoch": "epoch_"}
MAX_PARAM_CHARS = 500  # MLflow's limit on a param value is 6000; keep the table readable


def tracking_wanted(config: TrialConfig, tracking_uri: str | None) -> bool:
    """Whether `hpo train` logs this trial to MLflow (see the module doc)."""
    on = bool(tracking_uri or os.environ.get("MLFLOW_TRACKING_URI"))
    return on and "mlflow" in report_destinations(config.train.report_to)


def open_store(tracking_uri: str | None) -> tuple[Any, str]:
    """(MlflowClient, URI): checked before training (UserInputError when it does not answer)."""
    from hpo.tracking import mlflow_env  # noqa: F401 (first: hpo's MLflow settings)
    from hpo.tracking.mlflow_store import open_client

    return open_client(tracking_uri)


def log_trial(client: Any, config: TrialConfig) -> str:
    """One MLflow run of the finished trial in config.output_dir; its run id."""
    from mlflow.entities import Metric, Param

    # one mapping of states to run statuses for `hpo train` and a search's trials; imported here,
    # as mlflow is, so that `hpo train` without tracking does not load the tracking modules
    from hpo.tracking.mlflow_tracker import RUN_STATUS

    out = Path(config.output_dir)
    experiment = client.get_experiment_by_name(config.name)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(config.name)
    )
    run = client.create_run(
        experiment_id, run_name=out.name, tags={"hpo.kind": "train", "hpo.trial_dir": str(out)}
    )
    run_id = run.info.run_id
    params = [
        Param(key, str(value)[:MAX_PARAM_CHARS])
        for key, value in flatten(config_to_dict(config)).items()
    ]
    for start in range(0, len(params), 100):  # MLflow takes 100 params per batch
        client.log_batch(run_id, params=params[start : start + 100])
    metrics = list(_metrics(out / "metrics.jsonl"))
    for start in range(0, len(metrics), 1000):  # and 1000 metrics
        client.log_batch(run_id, metrics=[Metric(*m) for m in metrics[start : start + 1000]])
    for name in ARTIFACTS:
        if (out / name).is_file():
            client.log_artifact(run_id, str(out / name))
    state = _state(out / "result.json")
    client.set_tag(run_id, "hpo.state", state)
    client.set_terminated(run_id, RUN_STATUS.get(state, "FAILED"))
    return run_id


def _metrics(path: Path):
    from runner.jsonl import read_records

    if not path.is_file():
        return
    now_ms = int(time.time() * 1000)  # records carry steps, not times
    for record in read_records(path):
        prefix = LOGGED_RECORDS.get(record.get("type"))
        if prefix is None:
            continue
        step = int(record["step"])
        for key, value in record.items():
            if key in ("type", "step", "time") or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                name = key if key.startswith(prefix) else prefix + key
                yield name, float(value), now_ms, step


def _state(path: Path) -> str:
    """result.json's status, an older version's word ("completed") read as today's."""
    try:
        return read_state(str(json.loads(path.read_text()).get("status", "failed")))
    except (OSError, ValueError):
        return "failed"
