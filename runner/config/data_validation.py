"""The rules between the fields of data and data.clean, and the clean extra's packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from runner.config.common import Need, findable
from runner.config.data import CleanConfig
from runner.config.trial import TrialConfig
from runner.task_config import validate_tasks
from runner.yaml_io import excerpt

# runner.data.tokenizer.MIN_BPE_VOCAB_SIZE (256 byte tokens + its 5 special tokens), here so
# that validating a config does not import the tokenizers library; a test keeps them equal
MIN_BPE_VOCAB_SIZE = 261


def check_data(config: TrialConfig, need: Need) -> None:
    """data's, data.clean's, each task's (multitask), and EDA augmentation's."""
    d, m = config.data, config.model
    need(
        d.tokenizer != "bpe" or m.pretrained is not None or d.vocab_size >= MIN_BPE_VOCAB_SIZE,
        "data.vocab_size",
        f"byte-level BPE needs at least {MIN_BPE_VOCAB_SIZE} (256 bytes + 5 special tokens), "
        f"got {d.vocab_size}; raise it or use data.tokenizer=char",
    )
    need(
        d.max_doc_chars >= d.min_doc_chars,
        "data.max_doc_chars",
        f"must be >= data.min_doc_chars ({d.min_doc_chars}), got {d.max_doc_chars}",
    )
    check_clean(d.clean, need)
    need(
        d.max_tokens_per_batch >= d.max_length,
        "data.max_tokens_per_batch",
        f"must be >= data.max_length ({d.max_length}) so the longest example fits",
    )
    validate_tasks(config, need)
    need(
        not d.augment_copies or config.task != "lm",
        "data.augment_copies",
        "EDA augmentation is for classify only",
    )
    need(
        not d.augment_copies
        or any(
            (
                d.augment_synonym_replacement,
                d.augment_random_insertion,
                d.augment_random_swap,
                d.augment_random_deletion,
            )
        ),
        "data.augment_copies",
        "set a rate above 0 for at least one data.augment_* operation",
    )


# The optional packages of data.clean and the extra that installs them (pyproject's [clean]).
CLEAN_EXTRA_INSTALL = "pip install 'hpo[clean]'"


def check_clean(c: CleanConfig, need: Need) -> None:
    """data.clean's max_chars, and its optional packages present before any data is read."""
    need(
        c.max_chars == 0 or c.max_chars >= c.min_chars,
        "data.clean.max_chars",
        f"must be 0 (off) or >= data.clean.min_chars ({c.min_chars}), got {c.max_chars}",
    )
    # the packages are looked up, not imported, so validating stays cheap (hpo/extras.py does
    # the same for the commands' extras; runner imports nothing from hpo)
    if c.dedup == "near":
        need(
            findable("datasketch"),
            "data.clean.dedup",
            f"dedup: near needs the clean extra (datasketch): {CLEAN_EXTRA_INSTALL}",
        )
    if c.language is not None:
        need(
            findable("langdetect"),
            "data.clean.language",
            f"language: {excerpt(c.language)} needs the clean extra (langdetect): "
            f"{CLEAN_EXTRA_INSTALL}",
        )
        spec = importlib.util.find_spec("langdetect")
        assert spec is not None and spec.origin is not None
        known = sorted(p.name for p in (Path(spec.origin).parent / "profiles").iterdir())
        need(
            c.language in known,
            "data.clean.language",
            f"unknown language {excerpt(c.language)}; langdetect knows {', '.join(known)}",
        )
