"""A trained model back from a checkpoint: for evaluation, save_pretrained export, serving.

Example:
    >>> model, tokenizer, config = load_trained_model("runs/lm_tiny/checkpoints/best.pt")
    >>> export_pretrained("runs/lm_tiny/checkpoints/best.pt", "models/lm_tiny")  # transformers dir
"""

from __future__ import annotations

from pathlib import Path

import transformers

from runner.checkpoint import MODEL_KEYS, load_checkpoint, reading_checkpoint
from runner.config import TrialConfig, config_from_dict
from runner.data.tokenizer import TextTokenizer
from runner.errors import ConfigError
from runner.model import build_model


def load_trained_model(
    checkpoint: str | Path, single_head_for: str | None = None
) -> tuple[transformers.PreTrainedModel, TextTokenizer, TrialConfig]:
    """Model (eval mode, CPU), tokenizer and config exactly as the checkpoint holds them.

    A multitask checkpoint gives runner.multitask's MultiTaskClassifier (a head per task), which
    evaluates like the others but is no transformers model: with `single_head_for` (what the
    caller makes of the model, e.g. "hpo quantize") such a checkpoint is refused with one line.
    """
    state = load_checkpoint(checkpoint, require=MODEL_KEYS)
    with reading_checkpoint(checkpoint):
        config = config_from_dict(state["config"], source=str(checkpoint))
    if single_head_for and config.task == "multitask":
        raise ConfigError(
            f"{checkpoint}: {single_head_for} takes an lm or classify model; this multitask "
            "model has a head per task (its weights are in the checkpoint) (task)"
        )
    with reading_checkpoint(checkpoint):
        tokenizer = TextTokenizer.from_json(state["tokenizer"])
        labels = [str(label) for label in state.get("label_names", [])]
    model = build_model(config, tokenizer.vocab_size, tokenizer.pad_id, len(labels))
    with reading_checkpoint(checkpoint):
        model.load_state_dict(state["model"])
    if labels:
        model.config.id2label = dict(enumerate(labels))
        model.config.label2id = {label: i for i, label in enumerate(labels)}
    return model.eval(), tokenizer, config


def export_pretrained(checkpoint: str | Path, directory: str | Path) -> Path:
    """Write model and tokenizer with save_pretrained: `model.pretrained: DIR` loads it back."""
    model, tokenizer, _ = load_trained_model(checkpoint, "export with save_pretrained")
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
