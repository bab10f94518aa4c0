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
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from runner.errors import CheckpointError, UserInputError
from runner.files import atomic_write, sweep_temporaries
from runner.yaml_io import excerpt

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


# A checkpoint is opened as a zip archive and its declared sizes checked before torch.load
# unpacks anything: torch.save writes every entry stored (uncompressed), so an entry that is
# compressed, or sizes that add up to more than the file holds, mean a forged or damaged file
# (a 1 MB zip bomb would otherwise expand to gigabytes in memory).
MAX_CHECKPOINT_BYTES = 4 * 1024**3  # the cap when the model's size is unknown (pretrained)
MAX_CHECKPOINT_ENTRIES = 100_000  # one per tensor; a large model with its optimizer has thousands
_FIXED_STATE_BYTES = 256 * 1024**2  # tokenizer, RNG states, config, data position: a few MB
_TYPES = {  # key -> type, checked whenever the key is present
    "model": dict,
    "config": dict,
    "tokenizer": str,
    "label_names": list,
    "task_label_names": dict,  # multitask: each task's class names
    "optimizer": dict,
    "scaler": dict,
    "monitor": dict,
    "trial": dict,
    "rng": dict,
}
MODEL_KEYS = ("model", "config", "tokenizer")  # what load_trained_model reads
RESUME_KEYS = (*MODEL_KEYS, "optimizer", "scaler", "monitor", "trial", "rng")  # and a resume


def checkpoint_byte_limit(config: Any | None) -> int:
    """The most bytes a checkpoint of `config` (a TrialConfig) can hold, unpacked.

    A model built from the config's sizes has at most n parameters (an upper estimate from
    vocab, context, layers and width); its checkpoint holds the weights and AdamW's two moments
    in float32, so 3 * 4 * n bytes; twice that, plus 256 MB for the rest, is the limit. A
    pretrained model's size is not in the config: MAX_CHECKPOINT_BYTES (4 GiB) then.
    """
    if config is None or getattr(config.model, "pretrained", None):
        return MAX_CHECKPOINT_BYTES
    m, d = config.model, config.data
    # char tokenizers are not bound by vocab_size: allow for a large alphabet
    vocab = max(d.vocab_size, 65_536)
    positions = max(d.block_size, d.max_length) + 2
    width = m.n_embd
    parameters = (vocab + positions) * width * 2 + m.n_layer * (13 * width * width + 20 * width)
    return min(2 * 3 * 4 * parameters + _FIXED_STATE_BYTES, MAX_CHECKPOINT_BYTES)


def _check_archive(path: Path, max_bytes: int) -> None:
    """Refuse a file that is not a zip archive as torch.save writes it, or unpacks too large."""
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as err:
        raise CheckpointError(
            f"{path}: not a readable runner checkpoint (not a complete zip archive: "
            f"{type(err).__name__}); use a checkpoints/best.pt or last.pt written by hpo"
        ) from None
    if len(entries) > MAX_CHECKPOINT_ENTRIES:
        raise CheckpointError(f"{path}: {len(entries):,} entries; not a checkpoint written by hpo")
    if any(entry.compress_type != zipfile.ZIP_STORED for entry in entries):
        raise CheckpointError(
            f"{path}: compressed entries (torch.save stores them uncompressed); "
            "not a checkpoint written by hpo"
        )
    declared = sum(entry.file_size for entry in entries)
    if declared > size:
        raise CheckpointError(
            f"{path}: declares {declared:,} bytes of content in a file of {size:,}; "
            "damaged or forged"
        )
    if declared > max_bytes:
        raise CheckpointError(
            f"{path}: holds {declared:,} bytes, more than the {max_bytes:,} a checkpoint of "
            "this model can (see runner/checkpoint.py checkpoint_byte_limit)"
        )


def load_checkpoint(
    path: str | Path, *, expected_config: Any | None = None, require: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Load a checkpoint written by save_checkpoint; CheckpointError for anything else.

    The file is refused before torch.load when its archive is malformed or declares more than
    checkpoint_byte_limit(expected_config) bytes; after it, when a key of `require`
    (MODEL_KEYS, RESUME_KEYS) is missing, or a known key holds the wrong type.
    """
    path = Path(path)
    if not path.is_file():
        what = "not a file" if path.exists() else "not found"
        raise CheckpointError(f"{path}: checkpoint {what}")
    _check_archive(path, checkpoint_byte_limit(expected_config))
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
            f"{path}: checkpoint version {excerpt(state.get('version'))} is not supported "
            f"(expected {VERSION})"
        )
    for key in require:
        if key not in state:
            raise CheckpointError(f"{path}: damaged checkpoint: {key} missing ({key})")
    for key, kind in _TYPES.items():
        if key in state and not isinstance(state[key], kind):
            raise CheckpointError(
                f"{path}: damaged checkpoint: a {type(state[key]).__name__} where a "
                f"{kind.__name__} belongs ({key})"
            )
    if "model" in state and not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
        raise CheckpointError(f"{path}: damaged checkpoint: weights that are not tensors (model)")
    if "config" in state and state["config"].get("task") not in ("lm", "classify", "multitask"):
        raise CheckpointError(
            f"{path}: damaged checkpoint: no task lm, classify or multitask (config.task)"
        )
    return state


@contextmanager
def reading_checkpoint(path: str | Path) -> Iterator[None]:
    """Turn an error while applying a loaded checkpoint's content (load_state_dict, the
    tokenizer, the RNG states) into a CheckpointError naming the file: such content passed
    load_checkpoint's checks, but does not fit the model or the state it is restored into."""
    try:
        yield
    except UserInputError:  # already says what is wrong (a ConfigError in its config, say)
        raise
    except Exception as err:  # the content is the file's: any failure to apply it is the file's
        raise CheckpointError(
            f"{path}: damaged checkpoint or one of another model: {type(err).__name__}: "
            f"{excerpt(str(err), 200)[1:-1]}"
        ) from None


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
