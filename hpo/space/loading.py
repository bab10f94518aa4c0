"""Space files and --enqueue files read from disk, validated before any trial.

Paths in a space file are relative to the space file: `experiment:` is resolved against the
space file's folder, and so is any string value of a param that names a path (data.path,
data.cache_dir, model.pretrained: runner.config.PATH_KEYS). An experiment given on the command
line (--experiment) is relative to the current folder. Both become absolute here, so a space
runs the same from any folder. Files are read with runner.yaml_io (UTF-8, size and alias
limits, duplicate keys refused).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.space.distributions import Categorical, Fixed, Float, Int
from hpo.space.numeric import number_or_none
from hpo.space.parsing import KeyCheck, space_from_dict
from hpo.space.search_space import SearchSpace, SpaceError
from hpo.terminal import printable
from runner.config import PATH_KEYS
from runner.errors import UserInputError
from runner.yaml_io import excerpt, load_yaml_file, load_yaml_file_with_lines


def load_space(
    path: str | Path | Mapping[str, Any],
    experiment: str | None = None,
    driver: str = "optuna",
    config_key_check: KeyCheck | None = None,
) -> SearchSpace:
    """Read and validate a space before any trial; raises SpaceError naming file and key.

    path: a space file, or the space as a dict (hpo.search(space={...})): its paths are then
    relative to the current folder and its errors name `<space>`. A W&B sweep or a Ray
    Tune-style space (hpo.space.foreign) is converted into hpo's format first.

    Args:
        experiment: replaces the space's `experiment` (the CLI's --experiment), relative to the
            current folder; a file's own is relative to the file's folder.
        driver: whose options the space's `driver:` section is checked against.
        config_key_check: `check_key(key, source)` raising UserInputError on unknown config keys
            (runner.config.check_key for runner trials; None for plain-function objectives).
    """
    from hpo.space.foreign import to_hpo_space, with_original_key

    if isinstance(path, Mapping):
        raw: Any = dict(path)
        source, base_dir, in_file = "<space>", Path.cwd(), False
    else:
        path = Path(path)
        raw = _read_yaml(path, "space file")
        source, base_dir, in_file = str(path), path.parent, True
    raw, notes, original_key = to_hpo_space(raw, source)
    for note in notes:  # what a W&B or Ray space holds that hpo leaves out
        logging.getLogger("hpo.space").warning("hpo: note: %s: %s", printable(source), note)
    try:
        space = space_from_dict(raw, source, experiment, driver, config_key_check)
    except SpaceError as err:
        err = with_original_key(err, original_key)  # a converted file's own key
        raise (with_line(err, source) if in_file else err) from None
    if experiment is not None:
        where = Path(experiment).expanduser().resolve()
    elif isinstance(space.experiment, str):
        where = (base_dir / Path(space.experiment).expanduser()).resolve()
        if not where.is_file():  # blame the space file's line, not a file nobody wrote
            missing = SpaceError(f"{source}: experiment file {where} not found (experiment)")
            raise (with_line(missing, source) if in_file else missing) from None
    else:
        where = None
    params = tuple(
        dataclasses.replace(p, distribution=_resolve_path_values(p.distribution, base_dir))
        if p.name in PATH_KEYS
        else p
        for p in space.params
    )
    return dataclasses.replace(
        space, experiment=None if where is None else str(where), params=params
    )


def load_enqueue(
    path: str | Path | Sequence[Mapping[str, Any]], space: SearchSpace
) -> tuple[dict[str, Any], ...]:
    """Read an --enqueue file: a YAML list of {param: value} run first, each checked against space.

    path may also be the list itself (hpo.search(enqueue=[...])); its errors name `<enqueue>`.
    """
    if isinstance(path, str | Path):
        path = Path(path)
        raw = _read_yaml(path, "enqueue file")
    else:
        raw, path = (
            [dict(item) if isinstance(item, Mapping) else item for item in path],
            "<enqueue>",
        )
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise SpaceError(f"{path}: expected a YAML list of {{param: value}} mappings")
    searched = {p.name: p.distribution for p in space.searched}
    for i, item in enumerate(raw):
        for key, value in item.items():
            if key not in searched:
                raise SpaceError(
                    f"{path}: item {i}: {excerpt(key)} is not a searched param of {space.source}"
                )
            if isinstance(value, str) and isinstance(searched[key], Float | Int):
                value = item[key] = number_or_none(value)
            if isinstance(searched[key], Float) and isinstance(value, int) and value is not True:
                value = item[key] = float(value)
            if not searched[key].contains(value):
                raise SpaceError(f"{path}: item {i}: {excerpt(value)} is outside the space ({key})")
    return tuple(raw)


def with_line(error: SpaceError, source: str) -> SpaceError:
    """The error "SOURCE: what (KEY)" as "SOURCE:LINE: what (KEY)", LINE being where KEY (or
    the deepest of its parents written in the file) is; the error unchanged when none is found.

    A param's name holds dots itself (params.train.learning_rate.high), which is why the lines
    are looked up by the dotted path as runner.yaml_io's key map writes it.
    """
    prefix = f"{source}: "
    message = str(error)
    if not message.startswith(prefix) or not message.endswith(")") or " (" not in message:
        return error
    key = message.rsplit(" (", 1)[1][:-1]
    try:
        _, lines = load_yaml_file_with_lines(source, "space file", SpaceError)
    except UserInputError:
        return error
    parts = key.split(".")
    line = next(
        (lines[k] for k in (".".join(parts[:n]) for n in range(len(parts), 0, -1)) if k in lines),
        None,
    )
    if line is None:
        return error
    return SpaceError(f"{source}:{line}: {message[len(prefix) :]}")


def _read_yaml(path: Path, what: str) -> Any:
    return load_yaml_file(path, what, SpaceError)  # bounded and strict: duplicates are errors


def _resolve_path_values(distribution: Any, base_dir: Path) -> Any:
    """A Fixed or Categorical of paths with its relative string values made absolute."""

    def absolute(value: Any) -> Any:
        if not isinstance(value, str) or not value:
            return value
        path = Path(value).expanduser()
        return value if path.is_absolute() else str((base_dir / path).resolve())

    if isinstance(distribution, Fixed):
        return Fixed(absolute(distribution.value))
    if isinstance(distribution, Categorical):
        return Categorical(tuple(absolute(c) for c in distribution.choices))
    return distribution
