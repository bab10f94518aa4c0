"""The best checkpoint of a study as an MLflow transformers model, registered with an alias.

The runner's models are transformers PreTrainedModels (GPT-2 for task lm, BERT for classify)
and its tokenizers (byte-level BPE, characters, or a pretrained one) are `tokenizers`
Tokenizers that save as a transformers PreTrainedTokenizerFast. So the best checkpoint is
logged to the study's parent run with MLflow's own `mlflow.transformers` flavor, model and
tokenizer together, as the pipeline a Hugging Face user expects: "text-generation" for an lm,
"text-classification" for a classifier. Two things make the pipeline encode text as the runner
did in training: a classifier's tokenizer gets a post-processor that wraps each text in the
<cls> ... <sep> tokens the runner adds by hand, and both get the context length
(model_max_length) with truncation on for classification. Greedy decoding is the lm's default
(model_config do_sample false, max_new_tokens 16). The trial's config.yaml is logged beside the
model (artifact best/config.yaml); `hpo export STUDY --onnx` adds the ONNX file (artifact onnx/).

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
import tempfile
import warnings
from collections.abc import Iterator
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import yaml

from runner.errors import UserInputError

log = logging.getLogger(__name__)

MODEL_NAME = "model"  # the logged model's name in the run
CHECKPOINT_ARTIFACTS = "best_checkpoint"  # a command study's best checkpoint in its run
REGISTERED_TAG = "hpo.registered_model"  # on the parent run: NAME/VERSION
REQUIREMENTS = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "numpy")
MAX_NEW_TOKENS = 16  # length of an lm's greedy continuation (the pipeline's default)


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
            model_info = _log_model(client, run, checkpoint, tags)
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


def pipeline_parts(checkpoint: Path) -> tuple[Any, Any, str, dict[str, Any]]:
    """(model, transformers tokenizer, pipeline task, pipeline settings) of a checkpoint, the
    tokenizer set up to encode as the runner did in training."""
    from tokenizers.processors import TemplateProcessing
    from transformers import AutoTokenizer

    from runner.export import load_trained_model

    model, tokenizer, config = load_trained_model(checkpoint)
    with tempfile.TemporaryDirectory(prefix="hpo-tokenizer-") as tmp:
        tokenizer.save_pretrained(tmp)
        hf = AutoTokenizer.from_pretrained(tmp, local_files_only=True)
    if config.task == "lm":
        hf.model_max_length = config.data.block_size
        return model, hf, "text-generation", {"max_new_tokens": MAX_NEW_TOKENS, "do_sample": False}
    # the runner encodes a text as [cls] tokens [sep], cut to max_length: so does the pipeline
    cls_, sep = hf.convert_ids_to_tokens([tokenizer.cls_id, tokenizer.sep_id])
    hf.backend_tokenizer.post_processor = TemplateProcessing(
        single=f"{cls_} $A {sep}",
        special_tokens=[(cls_, tokenizer.cls_id), (sep, tokenizer.sep_id)],
    )
    hf.model_max_length = config.data.max_length
    return model, hf, "text-classification", {"truncation": True}


def _signature(task: str) -> Any:
    """Texts in; an lm's continued text (max_new_tokens a predict param), or a label and its
    probability. Given, not inferred: inferring runs the pipeline on an example."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    texts = Schema([ColSpec("string")])
    if task == "text-generation":
        return ModelSignature(
            inputs=texts,
            outputs=Schema([ColSpec("string")]),
            params=ParamSchema([ParamSpec("max_new_tokens", "long", MAX_NEW_TOKENS)]),
        )
    return ModelSignature(
        inputs=texts, outputs=Schema([ColSpec("string", "label"), ColSpec("double", "score")])
    )


def _log_model(client: Any, run: Any, checkpoint: Path, tags: dict[str, str]) -> Any:
    """Log the checkpoint as the run's transformers model; MLflow's ModelInfo."""
    import mlflow
    from huggingface_hub import ModelCard
    from mlflow.models import Model

    model, tokenizer, task, settings = pipeline_parts(checkpoint)
    # a card of our own: without one MLflow looks the model up on the Hugging Face Hub
    card = ModelCard(
        f"---\nlibrary_name: transformers\npipeline_tag: {task}\n---\n"
        f"# hpo study {tags['hpo.study']}, trial {tags['hpo.trial']}\n\n"
        f"{tags['hpo.metric']} {tags['hpo.value']} ({tags['hpo.direction']}). "
        f"The study: {tags['hpo.study_dir']}\n"
    )
    quiet = logging.getLogger("mlflow.transformers")
    level, quiet.level = quiet.level, logging.ERROR  # "no license information": it is yours
    with contextlib.ExitStack() as restore, warnings.catch_warnings():
        restore.callback(quiet.setLevel, level)
        # MLflow suggests an input example and warns about the pipeline's own defaults
        warnings.simplefilter("ignore", UserWarning)
        # made here, in the run's experiment: Model.log would put it in the active one
        logged = client.create_logged_model(
            run.info.experiment_id,
            name=MODEL_NAME,
            source_run_id=run.info.run_id,
            tags=tags,
            model_type=f"hpo-{task}",
        )
        return Model.log(
            None,
            mlflow.transformers,
            name=MODEL_NAME,
            run_id=run.info.run_id,
            model_id=logged.model_id,
            transformers_model={"model": model, "tokenizer": tokenizer},
            task=task,
            model_card=card,
            signature=_signature(task),
            model_config=settings,
            pip_requirements=[_pinned(p) for p in REQUIREMENTS],
        )


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


def _pinned(package: str) -> str:
    try:
        return f"{package}=={installed_version(package).split('+')[0]}"
    except Exception:  # not installed under that name: leave the version to pip
        return package
