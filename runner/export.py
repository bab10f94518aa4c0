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
from runner.model import build_model


def load_trained_model(
    checkpoint: str | Path,
) -> tuple[transformers.PreTrainedModel, TextTokenizer, TrialConfig]:
    """Model (eval mode, CPU), tokenizer and config exactly as the checkpoint holds them."""
    state = load_checkpoint(checkpoint, require=MODEL_KEYS)
    with reading_checkpoint(checkpoint):
        config = config_from_dict(state["config"], source=str(checkpoint))
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
    model, tokenizer, _ = load_trained_model(checkpoint)
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
