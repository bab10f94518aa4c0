"""Space files and --enqueue files read from disk, validated before any trial."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpo.space.distributions import Float, Int
from hpo.space.numeric import number_or_none
from hpo.space.parsing import KeyCheck, space_from_dict
from hpo.space.search_space import SearchSpace, SpaceError
from runner.yaml_io import load_yaml_file


def load_space(
    path: str | Path,
    experiment: str | None = None,
    driver: str = "optuna",
    config_key_check: KeyCheck | None = None,
) -> SearchSpace:
    """Read and validate a space file before any trial; raises SpaceError naming file and key.

    Args:
        experiment: replaces the file's `experiment` (the CLI's --experiment).
        driver: whose options the file's `driver:` section is checked against.
        config_key_check: `check_key(key, source)` raising UserInputError on unknown config keys
            (runner.config.check_key for runner trials; None for plain-function objectives).
    """
    path = Path(path)
    raw = load_yaml_file(
        path, "space file", SpaceError
    )  # bounded and strict: duplicate keys are errors
    return space_from_dict(raw, str(path), experiment, driver, config_key_check)


def load_enqueue(path: str | Path, space: SearchSpace) -> tuple[dict[str, Any], ...]:
    """Read an --enqueue file: a YAML list of {param: value} run first, each checked against space."""
    path = Path(path)
    raw = load_yaml_file(path, "enqueue file", SpaceError)
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise SpaceError(f"{path}: expected a YAML list of {{param: value}} mappings")
    searched = {p.name: p.distribution for p in space.searched}
    for i, item in enumerate(raw):
        for key, value in item.items():
            if key not in searched:
                raise SpaceError(
                    f"{path}: item {i}: '{key}' is not a searched param of {space.source}"
                )
            if isinstance(value, str) and isinstance(searched[key], Float | Int):
                value = item[key] = number_or_none(value)
            if isinstance(searched[key], Float) and isinstance(value, int) and value is not True:
                value = item[key] = float(value)
            if not searched[key].contains(value):
                raise SpaceError(f"{path}: item {i}: {key}: {value!r} is outside the space")
    return tuple(raw)
