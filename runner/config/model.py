"""model: the network a trial trains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from runner.config.common import documented


@dataclass(frozen=True)
class ModelConfig:
    """The network: a small GPT-2 decoder (lm) or BERT encoder (classify), or a local pretrained one."""

    pretrained: str | None = documented(
        None,
        "local directory saved with save_pretrained (model and tokenizer); nothing is downloaded",
    )
    n_layer: int = documented(2, "transformer blocks", above=0, limit=1024)
    n_head: int = documented(4, "attention heads per block", above=0, limit=1024)
    n_embd: int = documented(128, "hidden size", above=0, limit=65_536)
    dropout: float = documented(
        0.0, "dropout on embeddings, attention and residuals", low=0, below=1
    )
    tie_word_embeddings: bool = documented(
        True,
        "lm built from config: the output layer shares the input embedding's weights (GPT-2's)",
    )
    gradient_checkpointing: bool = documented(
        False, "recompute activations in backward to save memory on large models"
    )
    init: Literal["default", "xavier", "normal"] = documented(
        "default",
        "weights of a model built from config: default (transformers' own), xavier (Xavier-"
        "uniform Linear weights, zero biases) or normal (N(0, 0.02) Linear and embedding weights, "
        "zero biases); a pretrained model keeps its weights",
    )
