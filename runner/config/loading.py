"""Reading a config: experiment files, `key=value` overrides, paths; and writing one back."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from runner.config.common import deep_copy
from runner.config.hf_names import read_transformers_names
from runner.config.keys import TASK_ITEM_KEY, check_key
from runner.config.trial import TrialConfig
from runner.config.typed import build
from runner.config.validation import validate
from runner.errors import ConfigError
from runner.files import atomic_write_text
from runner.schema import described
from runner.yaml_io import excerpt, load_yaml_file, load_yaml_text


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> TrialConfig:
    """Read an experiment YAML file, apply `key=value` overrides and validate everything.

    The file is read strictly (runner.yaml_io: size, UTF-8, aliases, duplicate keys). An empty
    file is refused, never read as "all defaults": a config.yaml cut to 0 bytes by a crash would
    otherwise train silently with the built-in defaults.
    """
    path = Path(path)
    raw = load_yaml_file(path, "experiment file")
    if raw is None:
        raise ConfigError(f"{path}: empty file; not an experiment config")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return config_from_dict(
        merge_experiment(raw, path.parent, overrides, str(path)), source=str(path)
    )


def config_from_dict(
    raw: dict[str, Any], overrides: list[str] | tuple[str, ...] = (), source: str = "<config>"
) -> TrialConfig:
    """Build a validated TrialConfig from a nested dict plus `key=value` overrides."""
    merged = read_transformers_names(apply_overrides(raw, overrides, source), source)
    config = build(TrialConfig, merged, prefix="", source=source)
    validate(config, source)
    return config


def apply_overrides(raw: dict[str, Any], overrides, source: str) -> dict[str, Any]:
    """Return a copy of `raw` with each dotted `key=value` set; values are parsed as YAML."""
    merged = deep_copy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"override '{item}': expected key=value, e.g. train.learning_rate=3e-4"
            )
        key, text = item.split("=", 1)
        source_of_value = f"-o {excerpt(key.strip(), 60)[1:-1]}"
        value = load_yaml_text(text, source_of_value) if text.strip() else None
        set_dotted(merged, key.strip(), value, "override")
    return merged


def set_dotted(tree: dict[str, Any], key: str, value: Any, source: str) -> None:
    """Set `a.b.c` in a nested dict, checking the key against TrialConfig's fields.

    `tasks.N.KEY` sets KEY of the experiment's N-th task (from 0), e.g. tasks.1.loss_weight,
    so that a search space can search a task's loss weight.
    """
    check_key(key, source)
    if (task_key := TASK_ITEM_KEY.fullmatch(key)) is not None:
        tasks, index = tree.get("tasks"), int(task_key.group(1))
        if not isinstance(tasks, list | tuple) or not (
            index < len(tasks) and isinstance(tasks[index], dict)
        ):
            count = len(tasks) if isinstance(tasks, list | tuple) else 0
            raise ConfigError(
                f"{source}: the experiment has {count} task(s), no tasks.{index} to set ({key})"
            )
        tree["tasks"] = [*tasks]  # a copy: the caller's tree keeps its own list
        tree["tasks"][index] = {**tasks[index], task_key.group(2): value}
        return
    node = tree
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: {key}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def config_to_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict of the config, ready for yaml.safe_dump (tasks as a list)."""
    tree = dataclasses.asdict(config)
    if isinstance(tree.get("tasks"), tuple):
        tree["tasks"] = list(tree["tasks"])
    return tree


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {'a.b': value}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def save_config(config: TrialConfig, path: str | Path) -> None:
    """Write the resolved config as YAML that load_config reads back unchanged (atomically)."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))


def describe_config() -> str:
    """Every key with its default and one-line documentation (for `hpo train --help-config`)."""
    lines = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                lines.append(f"\n{prefix}{f.name}:  # {hints[f.name].__doc__.strip()}")
                walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                doc, allowed = f.metadata.get("doc", ""), f.metadata.get("allowed")
                allows = described(allowed) if allowed is not None else ""
                doc = f"{doc} ({allows})" if allows else doc  # the range loading checks
                lines.append(f"  {prefix}{f.name} = {f.default!r}  # {doc}")

    walk(TrialConfig, "")
    return "\n".join(lines).lstrip()


# Config keys that name files or folders a trial reads. Written in an experiment file they are
# relative to that file's folder; given on the command line (-o) relative to the current folder.
# output_dir is not among them: it is where results go, relative to the current folder.
PATH_KEYS = ("data.path", "data.cache_dir", "model.pretrained")  # and each tasks.N.path


def resolve_paths(tree: dict[str, Any], base_dir: str | Path) -> dict[str, Any]:
    """A copy of `tree` whose relative PATH_KEYS values are made absolute against base_dir."""
    resolved = deep_copy(tree)
    for key in PATH_KEYS:
        section, name = key.split(".")
        node = resolved.get(section)
        value = node.get(name) if isinstance(node, dict) else None
        if isinstance(value, str) and value:
            node[name] = _absolute(value, base_dir)
    tasks = resolved.get("tasks")  # multitask: each task's path, as data.path
    if isinstance(tasks, list | tuple):
        resolved["tasks"] = [
            {**task, "path": _absolute(task["path"], base_dir)}
            if isinstance(task, dict) and isinstance(task.get("path"), str) and task["path"]
            else task
            for task in tasks
        ]
    return resolved


def _absolute(value: str, base_dir: str | Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (Path(base_dir) / path).resolve())


def merge_experiment(
    raw: dict[str, Any], experiment_dir: str | Path, overrides: Sequence[str], source: str
) -> dict[str, Any]:
    """An experiment file's dict with its paths resolved against its folder, then -o overrides
    applied and their paths resolved against the current folder (see PATH_KEYS)."""
    merged = apply_overrides(resolve_paths(raw, experiment_dir), overrides, source)
    return resolve_paths(merged, Path.cwd())
