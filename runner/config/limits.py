"""The model's shape and memory on this machine.

Each size's range and sane limit is declared on its field (runner.schema.Allowed's limit)."""

from __future__ import annotations

from runner.config.common import Need
from runner.config.trial import TrialConfig

FP32_BYTES = 4


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
    """model's heads against its width, and a built model against the memory."""
    m = config.model
    need(
        m.n_embd % m.n_head == 0,
        "model.n_embd",
        f"must be divisible by model.n_head ({m.n_head}), got {m.n_embd}",
    )
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
