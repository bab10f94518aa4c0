"""The tokenized-data cache: memory-mapped numpy arrays plus JSON texts, one folder per key.

Parallel trials of a search prepare the same data at the same time. Each writes its entry
into a private temporary folder and renames it into place; the rename is atomic, so a reader
sees a whole entry or none, and when two writers race the first rename wins and the loser
uses the winner's entry. Entries are memory-mapped read-only, so trials share the pages.
The cache only saves time: when an entry cannot be written (disk full, read-only folder), the
trial goes on with the arrays in memory and a warning that says why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runner.errors import DataError
from runner.files import describe_os_error

log_to_console = logging.getLogger("runner")

# Bump when the preparation code changes what it writes, so old entries are not reused.
CACHE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class CacheEntry:
    """One prepared dataset: named arrays (memory-mapped) and named JSON texts."""

    path: Path
    arrays: dict[str, np.ndarray]
    texts: dict[str, str]


def cache_root(cache_dir: str | None) -> Path:
    """The cache folder, created: data.cache_dir, else $HPO_CACHE_DIR, else ~/.cache/hpo."""
    root = Path(cache_dir or os.environ.get("HPO_CACHE_DIR") or Path.home() / ".cache" / "hpo")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(
            f"data.cache_dir: cannot create the cache folder {root} ({err.strerror}); "
            "set data.cache_dir or $HPO_CACHE_DIR to a writable folder"
        ) from None
    return root


def cache_key(settings: Mapping[str, object]) -> str:
    """A sha256 of every setting that affects the prepared arrays (JSON-able values)."""
    payload = json.dumps({"format": CACHE_FORMAT_VERSION, **settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest dtype holding every token id: uint16 below 65536 ids, else int32."""
    return np.dtype(np.uint16) if vocab_size <= 65536 else np.dtype(np.int32)


def load_entry(root: Path, key: str) -> CacheEntry | None:
    """The entry stored under `key`, memory-mapped, or None when there is none."""
    folder = root / key
    if not folder.is_dir():
        return None
    arrays = {p.stem: np.load(p, mmap_mode="r") for p in sorted(folder.glob("*.npy"))}
    texts = {p.stem: p.read_text() for p in sorted(folder.glob("*.json"))}
    return CacheEntry(folder, arrays, texts)


def store_entry(
    root: Path, key: str, arrays: Mapping[str, np.ndarray], texts: Mapping[str, str]
) -> CacheEntry:
    """Write an entry atomically and return it as stored (another process's, if it won).

    When it cannot be written, the entry in memory (not cached), with a warning naming why.
    """
    staging = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{key[:16]}-", dir=root))
        for name, array in arrays.items():
            np.save(staging / f"{name}.npy", array)
        for name, text in texts.items():
            (staging / f"{name}.json").write_text(text)
        os.rename(staging, root / key)
    except OSError as err:
        # Renaming onto a non-empty folder fails: another trial stored this entry first.
        if not (root / key).is_dir():
            log_to_console.warning(
                "data cache not written (%s); using the prepared data from memory",
                describe_os_error(err, err.filename or root / key),
            )
            return CacheEntry(root / key, dict(arrays), dict(texts))
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    entry = load_entry(root, key)
    assert entry is not None  # just written or written by the winner of the race
    return entry
