"""A best checkpoint as an MLflow transformers model: what hpo.tracking.model_registry logs and
registers.

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
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

MODEL_NAME = "model"  # the logged model's name in the run
REQUIREMENTS = ("mlflow", "torch", "transformers", "tokenizers", "safetensors", "numpy")
MAX_NEW_TOKENS = 16  # length of an lm's greedy continuation (the pipeline's default)


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


def log_transformers_model(client: Any, run: Any, checkpoint: Path, tags: dict[str, str]) -> Any:
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


def _pinned(package: str) -> str:
    try:
        return f"{package}=={installed_version(package).split('+')[0]}"
    except Exception:  # not installed under that name: leave the version to pip
        return package
