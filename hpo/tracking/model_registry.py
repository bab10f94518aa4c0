"""The best checkpoint of a study as an MLflow model, registered in the model registry.

The model is an MLflow pyfunc model logged to the study's parent run: the best checkpoint
exported with save_pretrained (weights, model config and tokenizer), the trial's config.yaml,
and TextPredictor, which reads texts and answers as the runner's data pipeline would have fed
them to the model: an lm gives the most likely next token and a greedy continuation, a
classifier its label and that label's probability. Each study adds one version to a
registered model (by default named after the MLflow experiment), tagged hpo.study, hpo.trial
and the objective's value; logging the same study's best trial again returns that version.

Example:
    >>> version = log_best_model(MlflowClient(), parent_run_id, "runs/lr_wd")
    >>> model = mlflow.pyfunc.load_model(f"models:/{version.name}/{version.version}")
    >>> model.predict(["def main("])          # lm: columns text, next_token, continuation
    >>> model.predict(pd.DataFrame({"text": ["a fine film"]}))   # classify: text, label, score

A study of command trials (hpo search --command) has no model the runner can load: its best
trial's checkpoints/best folder, as the script wrote it, is logged as the artifacts
best_checkpoint/ of the parent run and registered as a version whose source is that folder
(mlflow.artifacts.download_artifacts("models:/NAME/VERSION") fetches it; it is not a pyfunc).

The model's code (the hpo and runner packages) is stored inside it, so it loads wherever
mlflow, torch, transformers and tokenizers are installed; its pip requirements name them.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import yaml

from runner.errors import UserInputError

MODEL_NAME = "model"  # the logged model's name in the run
CHECKPOINT_ARTIFACTS = "best_checkpoint"  # a command study's best checkpoint in its run
REGISTERED_TAG = "hpo.registered_model"  # on the parent run: NAME/VERSION
REQUIREMENTS = (
    "mlflow",
    "torch",
    "transformers",
    "tokenizers",
    "safetensors",
    "numpy",
    "pandas",
    "pyyaml",
)
MAX_NEW_TOKENS = 16  # default length of an lm's greedy continuation (predict param)


class TextPredictor:
    """A trained model and its tokenizer, from a save_pretrained folder: texts in, rows out."""

    def __init__(self, folder: str | Path, task: str, context_length: int) -> None:
        import transformers

        from runner.data.tokenizer import TextTokenizer

        self.task, self.context_length = task, int(context_length)
        auto = (
            transformers.AutoModelForCausalLM
            if task == "lm"
            else transformers.AutoModelForSequenceClassification
        )
        self.model = auto.from_pretrained(str(folder), local_files_only=True).eval()
        self.tokenizer = TextTokenizer.from_pretrained(folder)

    def predict(self, texts: Any, max_new_tokens: int = MAX_NEW_TOKENS) -> list[dict[str, Any]]:
        """lm: text, next_token, continuation; classify: text, label, score (its probability).

        texts: a string, a list of strings, or a DataFrame with a `text` column (else its first).
        """
        if isinstance(texts, str):
            texts = [texts]
        elif hasattr(texts, "columns"):  # a pandas DataFrame
            texts = texts["text" if "text" in texts.columns else texts.columns[0]]
        texts = [str(t) for t in texts]
        if self.task == "lm":
            return [self._continue(text, max(1, int(max_new_tokens))) for text in texts]
        return self._classify(texts)

    def _continue(self, text: str, steps: int) -> dict[str, str]:
        from runner.generate import generate

        prompt = self.tokenizer.encode(text) or [self.tokenizer.eos_id]
        ids = generate(self.model, prompt, steps, context=self.context_length, greedy=True)
        return {
            "text": text,
            "next_token": self.tokenizer.decode(ids[:1]),
            "continuation": self.tokenizer.decode(ids),
        }

    def _classify(self, texts: list[str]) -> list[dict[str, Any]]:
        import torch

        tok, longest = self.tokenizer, self.context_length - 2  # room for [cls] and [sep]
        encoded = [[tok.cls_id, *ids[:longest], tok.sep_id] for ids in tok.encode_batch(texts)]
        width = max(len(ids) for ids in encoded)
        input_ids = torch.full((len(encoded), width), tok.pad_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        for row, ids in enumerate(encoded):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        with torch.inference_mode():
            probs = self.model(input_ids=input_ids, attention_mask=mask).logits.softmax(-1)
        scores, labels = probs.max(-1)
        names = self.model.config.id2label
        return [
            {"text": text, "label": str(names.get(int(label), int(label))), "score": float(s)}
            for text, label, s in zip(texts, labels, scores, strict=True)
        ]


def log_best_model(
    client: Any, run_id: str, study_dir: str | Path, registered_name: str | None = None
) -> Any:
    """Log runs/<study>/best/ as a pyfunc model of the run and register it; the ModelVersion.

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
    metric = (objective[0] if isinstance(objective, list) else objective)["metric"]
    tags = {
        "hpo.study": study["study"],
        "hpo.trial": str(trial["number"]),
        f"hpo.{metric}": str(trial["value"]),
        "hpo.study_dir": str(study_dir.resolve()),
    }
    # MLflow resolves the logged model (models:/<id>) through the global tracking URI
    with _tracking_uri(client.tracking_uri):
        if command_trials:  # the script's own files: artifacts, not a model MLflow can load
            client.log_artifacts(run_id, str(checkpoint), CHECKPOINT_ARTIFACTS)
            source, model_id = f"{run.info.artifact_uri}/{CHECKPOINT_ARTIFACTS}", None
        else:
            model_info = _log_model(client, run, checkpoint, best / "config.yaml", tags)
            source, model_id = model_info.model_uri, model_info.model_id
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
    return version


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


def _log_model(
    client: Any, run: Any, checkpoint: Path, config_path: Path, tags: dict[str, str]
) -> Any:
    """Export the checkpoint and log it as the run's pyfunc model; MLflow's ModelInfo."""
    import mlflow
    from mlflow.models import Model, ModelSignature
    from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

    import hpo
    import runner
    from runner.export import load_trained_model

    with tempfile.TemporaryDirectory(prefix="hpo-model-") as tmp:
        model, tokenizer, config = load_trained_model(checkpoint)  # as export_pretrained does
        folder = Path(tmp) / "pretrained"
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        task = config.task
        context = config.data.block_size if task == "lm" else config.data.max_length
        outputs = ["next_token", "continuation"] if task == "lm" else ["label", "score"]
        signature = ModelSignature(
            inputs=Schema([ColSpec("string")]),  # unnamed: a list of texts or a one-column table
            outputs=Schema(
                [
                    ColSpec("string", "text"),
                    *[ColSpec("double" if o == "score" else "string", o) for o in outputs],
                ]
            ),
            params=ParamSchema([ParamSpec("max_new_tokens", "long", MAX_NEW_TOKENS)])
            if task == "lm"
            else None,
        )
        artifacts = {"model": str(folder)}
        if config_path.is_file():
            artifacts["config"] = str(config_path)
        with warnings.catch_warnings():
            # MLflow suggests type hints and an input example: the signature says it all
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
                mlflow.pyfunc,
                name=MODEL_NAME,
                run_id=run.info.run_id,
                model_id=logged.model_id,
                python_model=_python_model(),
                artifacts=artifacts,
                signature=signature,
                model_config={"task": task, "context_length": context},
                code_paths=[str(Path(hpo.__file__).parent), str(Path(runner.__file__).parent)],
                pip_requirements=[_pinned(p) for p in REQUIREMENTS],
            )


def _python_model() -> Any:
    """An mlflow.pyfunc.PythonModel around TextPredictor (a local class: mlflow is imported here
    only; cloudpickle stores the class itself, TextPredictor comes from the bundled code)."""
    import mlflow.pyfunc

    class TextModel(mlflow.pyfunc.PythonModel):
        def load_context(self, context: Any) -> None:
            config = context.model_config
            self.predictor = TextPredictor(
                context.artifacts["model"], config["task"], config["context_length"]
            )

        def predict(self, context, model_input, params=None):  # no hints: the signature rules
            import pandas as pd

            steps = (params or {}).get("max_new_tokens", MAX_NEW_TOKENS)
            return pd.DataFrame(self.predictor.predict(model_input, steps))

    return TextModel()


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
