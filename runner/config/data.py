"""data: where the examples come from, how they are cleaned and tokenized."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from runner.config.common import documented

_RATE = {"low": 0, "high": 1}  # a probability or a fraction


@dataclass(frozen=True)
class CleanConfig:
    """Optional cleaning steps, in this order (runner/data/clean.py); each is counted in the data record."""

    html: bool = documented(
        False, "convert HTML to its visible text (html.parser; script/style dropped)"
    )
    unicode_normalization: Literal["none", "NFC", "NFKC", "NFD", "NFKD"] = documented(
        "none", "unicodedata normalization form applied to every document"
    )
    min_chars: int = documented(
        0, "drop documents (lm) or examples (classify) shorter than this (0: off)", low=0
    )
    max_chars: int = documented(0, "drop documents or examples longer than this (0: off)")
    max_non_alpha_fraction: float = documented(
        1.0,
        "drop documents whose non-space characters are more than this fraction non-letters (1: off)",
        low=0,
        high=1,
    )
    language: str | None = documented(
        None, "keep only documents langdetect identifies as this code, e.g. en (needs hpo[clean])"
    )
    dedup: Literal["none", "exact", "near"] = documented(
        "none",
        "drop later duplicates: exact (same text) or near (exact, then MinHash Jaccard of character "
        "5-grams >= near_duplicate_threshold; needs hpo[clean])",
    )
    near_duplicate_threshold: float = documented(
        0.9,
        "dedup near: estimated Jaccard similarity at or above which a document is a duplicate",
        above=0,
        high=1,
    )

    @property
    def enabled(self) -> bool:
        """Whether any step is on (near_duplicate_threshold alone changes nothing)."""
        return (
            self.html
            or self.unicode_normalization != "none"
            or self.min_chars > 0
            or self.max_chars > 0
            or self.max_non_alpha_fraction < 1
            or self.language is not None
            or self.dedup != "none"
        )


@dataclass(frozen=True)
class DataConfig:
    """Where the examples come from and how they are tokenized."""

    path: str | None = documented(
        None,
        "lm: text file or folder (None: the Python standard library's source); classify: CSV/TSV file or folder of one file per class",
    )
    tokenizer: Literal["bpe", "char"] = documented(
        "bpe", "byte-level BPE trained on the training split, or one token per character"
    )
    vocab_size: int = documented(
        2048, "BPE vocabulary size (ignored for char)", low=64, limit=1_048_576
    )
    block_size: int = documented(
        128, "lm: tokens per packed training block", above=1, limit=131_072
    )
    max_length: int = documented(
        128,
        "classify: examples are truncated to this many tokens",
        above=1,
        limit=131_072,
    )
    max_tokens_per_batch: int = documented(
        4096, "classify: padded tokens per batch; batches are built by length", limit=16_777_216
    )
    val_fraction: float = documented(
        0.1,
        "fraction of the data held out for validation, split deterministically by seed",
        above=0,
        below=1,
    )
    packing_strategy: Literal["wrapped", "documents"] = documented(
        "wrapped",
        "lm: wrapped (TRL's name): documents concatenated and cut into blocks, attention crosses "
        "documents; documents: the same blocks, but position ids restart at each document, so "
        "attention stays within it (block-diagonal causal mask), and the target across a "
        "boundary is ignored",
    )
    add_bos_token: bool = documented(
        False,
        "lm: start each document with a begin-of-document token (the tokenizer's <cls>, or a "
        "pretrained tokenizer's bos), so its first token is predicted too",
    )
    max_chars: int = documented(
        3_000_000, "lm: read at most this many characters of the corpus (0: all)", low=0
    )
    min_doc_chars: int = documented(16, "lm cleaning: drop documents shorter than this", low=0)
    max_doc_chars: int = documented(1_000_000, "lm cleaning: drop documents longer than this")
    text_column: str = documented("text", "classify CSV/TSV: column holding the text")
    label_column: str = documented("label", "classify CSV/TSV: column holding the label")
    augment_copies: int = documented(
        0,
        "classify, EDA augmentation: this many augmented copies of each training example are "
        "added (0: none); validation data is never augmented",
        low=0,
        high=64,
    )
    augment_synonym_replacement: float = documented(
        0.0,
        "EDA: each word with a synonym (shipped list) is replaced with this probability",
        **_RATE,
    )
    augment_random_insertion: float = documented(
        0.0, "EDA: about this fraction of the words: synonyms inserted at random positions", **_RATE
    )
    augment_random_swap: float = documented(
        0.0, "EDA: about this fraction of the words: swaps of two random words", **_RATE
    )
    augment_random_deletion: float = documented(
        0.0, "EDA: each word is deleted with this probability (one always stays)", **_RATE
    )
    cache_dir: str | None = documented(
        None, "tokenized-data cache (None: $HPO_CACHE_DIR or ~/.cache/hpo)"
    )
    clean: CleanConfig = field(default_factory=CleanConfig, metadata={"doc": "data.clean"})
