"""The best checkpoint of a study as an MLflow transformers model, registered with an alias.

The model is logged with MLflow's transformers flavor (hpo.tracking.transformers_model).

Each study adds one version to a registered model (by default named after the MLflow
experiment), tagged hpo.study, hpo.trial, hpo.metric, hpo.direction and hpo.value; logging the
same study's best trial again returns that version. The alias `champion` names the best
version: a new version takes it only when it beats the champion on the study's metric in its
direction (a smaller val_loss, a larger val_accuracy); a worse one is registered but the alias
stays, so `models:/NAME@champion` never gets worse (a `dvc repro` that finds a worse model
does not promote it). A champion chosen on another metric or direction cannot be compared: it
keeps the alias and a warning says why.

Example:
    >>> version = log_best_model(MlflowClient(), parent_run_id, "runs/lr_wd")
    >>> model = mlflow.pyfunc.load_model("models:/lm_tiny@champion")
    >>> model.predict(["def main("])                      # lm: the continued text
    >>> pipe = mlflow.transformers.load_model("models:/lm_tiny@champion")  # a transformers pipeline

A study of command trials (hpo search --command) has no model the runner can load: its best
trial's checkpoints/best folder, as the script wrote it, is logged as the artifacts
best_checkpoint/ of the parent run and registered as a version whose source is that folder
(mlflow.artifacts.download_artifacts("models:/NAME/VERSION") fetches it; it is not a pyfunc).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hpo.tracking.transformers_model import log_transformers_model
from runner.errors import UserInputError

log = logging.getLogger(__name__)

CHECKPOINT_ARTIFACTS = "best_checkpoint"  # a command study's best checkpoint in its run
REGISTERED_TAG = "hpo.registered_model"  # on the parent run: NAME/VERSION


CHAMPION = "champion"  # the alias of the best registered version


def log_best_model(
    client: Any, run_id: str, study_dir: str | Path, registered_name: str | None = None
) -> Any:
    """Log runs/<study>/best/ as a transformers model of the run, register it, and move the
    champion alias to it if it beats the champion; the ModelVersion.

    Args:
        client: an MlflowClient of the store that holds the run.
        run_id: the study's parent run.
        registered_name: the registered model; None: the run's experiment name.
    """
    from mlflow.exceptions import MlflowException

    study_dir = Path(study_dir)
    best = study_dir / "best"
    settings = study_dir / "study.yaml"
    study = yaml.safe_load(settings.read_text()) if settings.is_file() else {}
    command_trials = bool((study.get("space") or {}).get("command"))
    checkpoint = best / ("best" if command_trials else "best.pt")
    # a multitask model (a head per task) has no transformers pipeline: its files are logged
    trained = (
        yaml.safe_load((best / "config.yaml").read_text())
        if (best / "config.yaml").is_file()
        else {}
    )
    multitask = isinstance(trained, dict) and trained.get("task") == "multitask"
    if not (checkpoint.is_dir() if command_trials else checkpoint.is_file()):
        raise UserInputError(
            f"{study_dir}: no best checkpoint ({checkpoint} not found); a study "
            "needs a complete trial that saved a checkpoint to register a model"
        )
    trial = json.loads((best / "trial.json").read_text())
    run = client.get_run(run_id)
    name = registered_name or client.get_experiment(run.info.experiment_id).name
    existing = _version_of(client, name, run_id, trial["number"])
    if existing is not None:
        return existing
    objective = study["space"]["objective"]
    objective = objective[0] if isinstance(objective, list) else objective
    metric, direction = objective["metric"], objective.get("direction", "minimize")
    tags = {
        "hpo.study": study["study"],
        "hpo.trial": str(trial["number"]),
        "hpo.metric": metric,
        "hpo.direction": direction,
        "hpo.value": repr(float(trial["value"])),
        "hpo.study_dir": str(study_dir.resolve()),
    }
    # MLflow resolves the logged model (models:/<id>) through the global tracking URI
    with _tracking_uri(client.tracking_uri):
        if command_trials:  # the script's own files: artifacts, not a model MLflow can load
            client.log_artifacts(run_id, str(checkpoint), CHECKPOINT_ARTIFACTS)
            source, model_id = f"{run.info.artifact_uri}/{CHECKPOINT_ARTIFACTS}", None
        elif multitask:  # the checkpoint and its config, as artifacts
            for file_name in ("best.pt", "config.yaml"):
                client.log_artifact(run_id, str(best / file_name), CHECKPOINT_ARTIFACTS)
            source, model_id = f"{run.info.artifact_uri}/{CHECKPOINT_ARTIFACTS}", None
        else:
            model_info = log_transformers_model(client, run, checkpoint, tags)
            source, model_id = model_info.model_uri, model_info.model_id
            if (best / "config.yaml").is_file():
                client.log_artifact(run_id, str(best / "config.yaml"), "best")
        try:
            client.create_registered_model(
                name, description="Best models of hpo studies, one version per study"
            )
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        version = client.create_model_version(
            name,
            source=source,
            run_id=run_id,
            tags=tags,
            model_id=model_id,
            description=f"study {study['study']}: trial {trial['number']}, {metric} "
            f"{trial['value']}",
        )
    client.set_tag(run_id, REGISTERED_TAG, f"{name}/{version.version}")
    promote_if_better(client, version)
    return version


def promote_if_better(client: Any, version: Any) -> bool:
    """Point the champion alias at `version` if there is no champion or it beats it; whether it
    did. A champion on another metric or direction is kept (a warning says so)."""
    from mlflow.exceptions import MlflowException

    try:
        champion = client.get_model_version_by_alias(version.name, CHAMPION)
    except MlflowException as err:
        if err.error_code not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise
        champion = None
    if champion is not None and str(champion.version) != str(version.version):
        ours, theirs = version.tags, champion.tags
        same = all(ours.get(k) == theirs.get(k) for k in ("hpo.metric", "hpo.direction"))
        if not same:
            log.warning(
                "model %s: version %s keeps the alias %s: it was chosen on %s (%s), this "
                "study on %s (%s), which cannot be compared",
                version.name,
                champion.version,
                CHAMPION,
                theirs.get("hpo.metric"),
                theirs.get("hpo.direction"),
                ours.get("hpo.metric"),
                ours.get("hpo.direction"),
            )
            return False
        new, old = float(ours["hpo.value"]), float(theirs["hpo.value"])
        better = new < old if ours["hpo.direction"] == "minimize" else new > old
        if not better:
            log.warning(
                "model %s: version %s (%s %s) does not beat version %s (%s); %s stays there",
                version.name,
                version.version,
                ours["hpo.metric"],
                ours["hpo.value"],
                champion.version,
                theirs["hpo.value"],
                CHAMPION,
            )
            return False
    client.set_registered_model_alias(version.name, CHAMPION, str(version.version))
    return True


def _version_of(client: Any, name: str, run_id: str, trial: int) -> Any | None:
    """The version already registered for this run and best trial (a study logged twice)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except MlflowException:
        return None
    for version in versions:
        if version.tags.get("hpo.trial") == str(trial):
            return version
    return None


@contextlib.contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """Point MLflow's global tracking URI (and $MLFLOW_TRACKING_URI, which set_tracking_uri also
    sets) at the client's store for a while, then put both back as they were."""
    import mlflow

    env = os.environ.get("MLFLOW_TRACKING_URI")
    before = mlflow.get_tracking_uri() if mlflow.tracking.is_tracking_uri_set() else None
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env
