"""The encoder a classify model and a multitask model share the building of: BERT's config from
the experiment's sizes, or the base model of a local pretrained folder, and what transformers
raises when it cannot read such a folder.

Below both runner.model (which builds a multitask model through runner.multitask) and
runner.multitask (which builds its shared encoder from these), so neither imports the other's
module for them.
"""

from __future__ import annotations

import transformers

from runner.config import TrialConfig
from runner.errors import ConfigError
from runner.yaml_io import excerpt


def loading_errors() -> tuple[type[BaseException], ...]:
    """What transformers raises for a folder it cannot read: a bad config.json or weights."""
    errors: list[type[BaseException]] = [OSError, ValueError, TypeError, KeyError, RuntimeError]
    try:
        from huggingface_hub.errors import StrictDataclassError  # a config field of a wrong type

        errors.append(StrictDataclassError)
    except ImportError:
        pass
    try:
        from safetensors import SafetensorError  # a truncated or forged weights file

        errors.append(SafetensorError)
    except ImportError:
        pass
    return tuple(errors)


def cannot_load(path: str, err: BaseException) -> ConfigError:
    """The error for a pretrained folder transformers cannot load: the first line of its
    message, shortened (runner.model's loading of a whole model says the same)."""
    return ConfigError(
        f"{path}: cannot load the pretrained model: {first_line(err)} (model.pretrained)"
    )


def first_line(err: BaseException) -> str:
    """The first line of a loading error (or its type's name), shortened to 160 characters."""
    return excerpt(str(err).splitlines()[0] if str(err) else type(err).__name__, 160)[1:-1]


def bert_config(
    config: TrialConfig, vocab_size: int, pad_id: int, **extra: object
) -> transformers.BertConfig:
    """The BERT encoder's config from the experiment's model sizes: the classifier's, and the
    shared encoder of a multitask model (runner.multitask), so the two cannot drift."""
    m = config.model
    return transformers.BertConfig(
        vocab_size=vocab_size,
        hidden_size=m.n_embd,
        num_hidden_layers=m.n_layer,
        num_attention_heads=m.n_head,
        intermediate_size=4 * m.n_embd,
        hidden_dropout_prob=m.dropout,
        attention_probs_dropout_prob=m.dropout,
        max_position_embeddings=config.data.max_length,
        pad_token_id=pad_id,
        **extra,
    )


def load_pretrained_encoder(path: str) -> transformers.PreTrainedModel:
    """The base model (no head) of a local pretrained folder, for multitask's shared encoder."""
    try:
        return transformers.AutoModel.from_pretrained(
            path, local_files_only=True, trust_remote_code=False
        )
    except loading_errors() as err:
        raise cannot_load(path, err) from None
