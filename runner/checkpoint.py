"""Atomic checkpoints that hold everything an exact resume needs.

A checkpoint is one file written by torch.save to a temporary name in the same folder,
fsync'd and moved into place with os.replace (runner.files.atomic_write), so a crash or a
full disk mid-write leaves the previous file intact. It contains only tensors, numbers,
strings, lists and dicts, so it loads with torch.load(weights_only=True): model, optimizer,
grad scaler, schedule position, RNG states (python, numpy, torch, cuda), step, data position,
the train-metric window (runner.state), config and tokenizer.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runner.errors import CheckpointError
from runner.files import atomic_write, sweep_temporaries

FORMAT = "hpo-runner-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (plus format marker) to `path` atomically and durably.

    Raises runner.files.StorageError naming `path` when it cannot be written (disk full:
    "no space left on device while writing PATH"); the previous file at `path` is then intact.
    """
    path = Path(path)
    atomic_write(
        path, lambda handle: torch.save({"format": FORMAT, "version": VERSION, **state}, handle)
    )
    # a writer killed mid-save (kill -9) leaves its temporary file behind: sweep those
    sweep_temporaries(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by save_checkpoint; CheckpointError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for foreign or truncated files
        raise CheckpointError(
            f"{path}: not a readable runner checkpoint ({type(err).__name__}); "
            "use a checkpoints/best.pt or last.pt written by hpo"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a checkpoint written by the hpo runner")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {state.get('version')} is not supported (expected {VERSION})"
        )
    return state


def capture_rng_state() -> dict[str, Any]:
    """RNG states of python, numpy, torch and CUDA, as weights_only-safe values."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of capture_rng_state."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
