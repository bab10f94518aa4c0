"""hpo's optional parts (pyproject.toml's extras) and the one check that names a missing one.

Core hpo is what `hpo search` on the default experiment needs (torch, transformers, optuna,
MLflow). A command or option that needs more calls require_extra before any work, so that a
core-only install answers with one line and exit 2 instead of a traceback midway:

    hpo: error: --driver ray needs the ray extra: pip install 'hpo[ray]'

Presence is asked of the import system (importlib.util.find_spec), which imports nothing: the
check costs microseconds where importing ray or onnx would cost seconds. Only top-level names
are asked, since find_spec of `ray.tune` would import ray.
"""

from __future__ import annotations

import importlib.util

from runner.errors import UserInputError

# extra -> the top-level modules it installs that hpo imports (pyproject.toml lists the packages)
EXTRAS: dict[str, tuple[str, ...]] = {
    "ray": ("ray",),
    "dvc": ("dvc",),
    "onnx": ("onnx", "onnxruntime", "onnxscript"),
    "postgres": ("psycopg",),
    "gpu": ("pynvml",),
    # data.clean's near-duplicate and language filters; runner/config/data_validation.py checks these itself
    "clean": ("datasketch", "langdetect"),
    # train.report_to: tensorboard; runner/config/validation.py checks it itself
    "tensorboard": ("tensorboard",),
}


class MissingExtra(UserInputError):
    """A command or option needs an extra this installation lacks (exit 2, before any work)."""


def missing_modules(extra: str) -> list[str]:
    """The modules of `extra` this Python cannot import (none when it is installed)."""
    return [name for name in EXTRAS[extra] if not _findable(name)]


def has_extra(extra: str) -> bool:
    return not missing_modules(extra)


def require_extra(extra: str, what: str) -> None:
    """Raise MissingExtra `WHAT needs the EXTRA extra: pip install 'hpo[EXTRA]'` when it is absent.

    what: the command or option as the user wrote it, e.g. "--driver ray", "hpo export --onnx".
    """
    if missing_modules(extra):
        raise MissingExtra(extra_message(extra, what))


def extra_message(extra: str, what: str) -> str:
    return f"{what} needs the {extra} extra: pip install 'hpo[{extra}]'"


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it; a module without a spec
        return False
