"""Builds the network: a small GPT-2 decoder (lm) or BERT encoder (classify), or a local pretrained one."""

from __future__ import annotations

from pathlib import Path

import transformers

from runner.config import TrialConfig
from runner.errors import ConfigError


def check_pretrained_dir(config: TrialConfig) -> None:
    """Fail fast when model.pretrained does not name a local save_pretrained directory."""
    path = config.model.pretrained
    if path is None:
        return
    if not (Path(path) / "config.json").is_file():
        raise ConfigError(
            f"model.pretrained: {path} is not a local model directory (no config.json); "
            "save one with model.save_pretrained(DIR) — nothing is downloaded"
        )


def build_model(
    config: TrialConfig, vocab_size: int, pad_id: int, num_labels: int = 0
) -> transformers.PreTrainedModel:
    """A fresh model from the experiment's sizes, or the local pretrained one in model.pretrained."""
    m = config.model
    if m.pretrained:
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
            transformers.BertConfig(
                vocab_size=vocab_size,
                hidden_size=m.n_embd,
                num_hidden_layers=m.n_layer,
                num_attention_heads=m.n_head,
                intermediate_size=4 * m.n_embd,
                hidden_dropout_prob=m.dropout,
                attention_probs_dropout_prob=m.dropout,
                max_position_embeddings=config.data.max_length,
                pad_token_id=pad_id,
                num_labels=num_labels,
            )
        )
    if m.gradient_checkpointing:
        # transformers 5 renamed gradient_checkpointing_enable; accept either spelling
        enable = getattr(model, "activation_checkpointing_enable", None)
        (enable or model.gradient_checkpointing_enable)()
    return model


def _load_pretrained(config: TrialConfig, num_labels: int) -> transformers.PreTrainedModel:
    if config.task == "lm":
        return transformers.AutoModelForCausalLM.from_pretrained(
            config.model.pretrained, local_files_only=True
        )
    return transformers.AutoModelForSequenceClassification.from_pretrained(
        config.model.pretrained, local_files_only=True, num_labels=num_labels
    )
