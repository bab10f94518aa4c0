"""Builds the network: a small GPT-2 decoder (lm) or BERT encoder (classify), or a local pretrained one."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from torch import nn

from runner.config import TrialConfig
from runner.encoder import bert_config, cannot_load, first_line, loading_errors
from runner.encoder import load_pretrained_encoder as load_pretrained_encoder  # importable here too
from runner.errors import ConfigError
from runner.multitask import build_multitask_model

MAX_CONFIG_JSON_BYTES = 1_000_000  # a model's config.json is a few KB
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def check_pretrained_dir(config: TrialConfig) -> None:
    """Fail fast when model.pretrained is not a local save_pretrained folder transformers can
    read: config.json missing, not JSON, of an unknown model type, or no weights file.

    Nothing is downloaded (local_files_only) and no code from the folder runs
    (trust_remote_code=False: an `auto_map` in config.json is ignored).
    """
    path = config.model.pretrained
    if path is None:
        return
    config_json = Path(path) / "config.json"
    if not config_json.is_file():
        raise ConfigError(
            f"{path}: not a local model directory (no config.json); save one with "
            "model.save_pretrained(DIR) — nothing is downloaded (model.pretrained)"
        )
    try:
        size = config_json.stat().st_size
    except OSError as err:
        raise ConfigError(
            f"{config_json}: cannot read ({err.strerror}) (model.pretrained)"
        ) from None
    if size > MAX_CONFIG_JSON_BYTES:
        raise ConfigError(f"{config_json}: larger than 1 MB; not a model config (model.pretrained)")
    try:
        transformers.AutoConfig.from_pretrained(
            path, local_files_only=True, trust_remote_code=False
        )
    except loading_errors() as err:
        raise ConfigError(
            f"{config_json}: not a model config transformers can read: {first_line(err)} "
            "(model.pretrained)"
        ) from None
    if not any((Path(path) / name).is_file() for name in _WEIGHT_FILES):
        raise ConfigError(
            f"{path}: no weights (model.safetensors or pytorch_model.bin); save them with "
            "model.save_pretrained(DIR) (model.pretrained)"
        )


def build_model(
    config: TrialConfig, vocab_size: int, pad_id: int, num_labels: int = 0
) -> nn.Module:
    """A fresh model from the experiment's sizes, or the local pretrained one in model.pretrained.

    lm and classify: a transformers PreTrainedModel; multitask: runner.multitask's
    MultiTaskClassifier (its heads' sizes are the tasks' num_labels, so num_labels is unused).
    """
    m = config.model
    if config.task == "multitask":  # a shared encoder with one head per task
        model = build_multitask_model(config, vocab_size, pad_id)
    elif m.pretrained:
        model = _load_pretrained(config, num_labels)
    elif config.task == "lm":
        model = transformers.GPT2LMHeadModel(
            transformers.GPT2Config(
                vocab_size=vocab_size,
                n_positions=config.data.block_size,
                n_embd=m.n_embd,
                n_layer=m.n_layer,
                n_head=m.n_head,
                resid_pdrop=m.dropout,
                embd_pdrop=m.dropout,
                attn_pdrop=m.dropout,
                bos_token_id=None,
                eos_token_id=None,
                pad_token_id=pad_id,
                use_cache=False,
                tie_word_embeddings=m.tie_word_embeddings,
            )
        )
    else:
        model = transformers.BertForSequenceClassification(
            bert_config(config, vocab_size, pad_id, num_labels=num_labels)
        )
    if not m.pretrained and m.init != "default":
        initialize_weights(model, m.init)
    if m.gradient_checkpointing:
        # transformers 5 renamed gradient_checkpointing_enable; accept either spelling
        target = getattr(model, "encoder", model) if config.task == "multitask" else model
        enable = getattr(target, "activation_checkpointing_enable", None)
        (enable or target.gradient_checkpointing_enable)()
    return model


INIT_STD = 0.02  # GPT-2's and BERT's initializer_range


@torch.no_grad()
def initialize_weights(model: nn.Module, scheme: str) -> None:
    """model.init: xavier (Xavier-uniform Linear/Conv1D weights) or normal (N(0, 0.02) Linear,
    Conv1D and embedding weights); biases zero; norms keep transformers' ones and zeros.

    GPT-2's Conv1D is a Linear stored transposed; Xavier's bound is symmetric in fan-in and
    fan-out, so the same call suits both. A tied output layer shares the embedding's weights.
    """
    linear_types = (nn.Linear, transformers.pytorch_utils.Conv1D)
    for module in model.modules():
        if isinstance(module, linear_types):
            if scheme == "xavier":
                nn.init.xavier_uniform_(module.weight)
            else:
                nn.init.normal_(module.weight, std=INIT_STD)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding) and scheme == "normal":
            nn.init.normal_(module.weight, std=INIT_STD)
            if module.padding_idx is not None:  # the pad token's vector stays zero
                module.weight[module.padding_idx].zero_()


def _load_pretrained(config: TrialConfig, num_labels: int) -> transformers.PreTrainedModel:
    path = config.model.pretrained
    options = {"local_files_only": True, "trust_remote_code": False}
    try:
        if config.task == "lm":
            return transformers.AutoModelForCausalLM.from_pretrained(path, **options)
        return transformers.AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=num_labels, **options
        )
    except loading_errors() as err:  # damaged weights, or a model type without this head
        raise cannot_load(path, err) from None
