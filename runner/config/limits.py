"""Sane limits on a config's values: sizes, seeds, and the model's memory on this machine."""

from __future__ import annotations

from runner.config.common import Need
from runner.config.trial import TrialConfig
from runner.errors import ConfigError
from runner.yaml_io import excerpt

# Sane upper limits for sizes: far beyond what any trial of this runner trains (GPT-2 XL has
# 48 layers, 25 heads, 1600 dims, 1024 positions, a 50k vocabulary), low enough that a typo
# such as per_device_train_batch_size: 1000000000 is refused before a trial allocates memory.
SIZE_LIMITS = {
    "train.per_device_train_batch_size": 65_536,
    "train.gradient_accumulation_steps": 65_536,
    "train.nproc": 1024,
    "data.block_size": 131_072,
    "data.max_length": 131_072,
    "data.max_tokens_per_batch": 16_777_216,
    "data.vocab_size": 1_048_576,
    "model.n_layer": 1024,
    "model.n_head": 1024,
    "model.n_embd": 65_536,
}
SEED_LIMIT = 2**32  # seeds are 0 <= seed < 2**32: what numpy's and torch's generators take

FP32_BYTES = 4


def check_seed(seed: object, what: str) -> None:
    """ConfigError unless seed is a whole number in [0, 2**32); `what` names where it came from."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ConfigError(
            f"{what}: a seed must be a whole number in [0, 2**32), got {excerpt(seed)}"
        )


def estimated_parameters(config: TrialConfig) -> int:
    """About how many parameters a model built from config (not pretrained) has."""
    m, d = config.model, config.data
    positions = d.block_size if config.task == "lm" else d.max_length
    embeddings = d.vocab_size * m.n_embd * (1 if m.tie_word_embeddings else 2)
    return embeddings + positions * m.n_embd + m.n_layer * 12 * m.n_embd * m.n_embd


def physical_memory_bytes() -> int | None:
    """This machine's RAM, or None where os.sysconf does not tell."""
    import os

    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_model(config: TrialConfig, need: Need) -> None:
    """model's sizes, every size against SIZE_LIMITS, and a built model against the memory."""
    m = config.model
    need(m.n_layer > 0, "model.n_layer", f"must be > 0, got {m.n_layer}")
    need(m.n_head > 0, "model.n_head", f"must be > 0, got {m.n_head}")
    need(m.n_embd > 0, "model.n_embd", f"must be > 0, got {m.n_embd}")
    need(
        m.n_embd % m.n_head == 0,
        "model.n_embd",
        f"must be divisible by model.n_head ({m.n_head}), got {m.n_embd}",
    )
    for key, limit in SIZE_LIMITS.items():
        section, name = key.split(".")
        value = getattr(getattr(config, section), name)
        need(value <= limit, key, f"must be <= {limit:_} (a sane limit), got {value:_}")
    if m.pretrained is None:
        memory = physical_memory_bytes()
        weights = estimated_parameters(config) * FP32_BYTES
        need(
            memory is None or weights <= memory,
            "model.n_embd",
            f"the model would have about {weights // FP32_BYTES:_} parameters, "
            f"{weights / 2**30:.1f} GiB in fp32, more than this machine's "
            f"{(memory or 0) / 2**30:.1f} GiB of memory; make it smaller",
        )
