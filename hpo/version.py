"""The version `hpo --version` prints.

The installed distribution's metadata says it (importlib.metadata). A source checkout run
without installing (PYTHONPATH=.) has none: then pyproject.toml beside the package says it,
the one place the version is written.
"""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def hpo_version() -> str:
    """hpo's version: the installed one, else pyproject.toml's, else 'unknown'."""
    try:
        return metadata.version("hpo")
    except metadata.PackageNotFoundError:
        return pyproject_version(PYPROJECT) or "unknown"


def pyproject_version(path: Path) -> str | None:
    """[project] version of a pyproject.toml; None when it is missing or says none."""
    try:
        with path.open("rb") as file:
            version = tomllib.load(file).get("project", {}).get("version")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return version if isinstance(version, str) else None
