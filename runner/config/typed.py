"""A nested dict of YAML values as the typed, frozen dataclasses: each value checked against
its field's annotation and declared range (runner.schema), converted only where YAML is
ambiguous."""

from __future__ import annotations

import dataclasses
import functools
import typing
from typing import Any, get_args, get_origin

from runner.config.keys import check_key
from runner.errors import ConfigError
from runner.schema import Allowed, checked, failing
from runner.task_config import TaskConfig, build_tasks


def build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: expected a mapping")
    fields = _fields(cls)
    for key in raw:
        if key not in fields:
            check_key(f"{prefix}{key}", source)
    values = {}
    fail = failing(source)
    for name, (section, allowed) in fields.items():
        if name not in raw:
            continue
        key = prefix + name
        if section is not None:
            values[name] = build(section, raw[name] or {}, key + ".", source)
        elif allowed is None:  # the tasks of a multitask experiment
            values[name] = build_tasks(raw[name], source)
        else:
            values[name] = checked(raw[name], allowed, key, fail)
    return cls(**values)


@functools.cache
def _fields(cls: type) -> dict[str, tuple[type | None, Allowed | None]]:
    """name -> (the dataclass of a section, or None; what a value allows, or None for tasks)."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, tuple[type | None, Allowed | None]] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            fields[f.name] = (hint, None)
        elif get_origin(hint) is tuple and get_args(hint)[0] is TaskConfig:
            fields[f.name] = (None, None)
        else:
            declared = f.metadata.get("allowed", Allowed())
            fields[f.name] = (None, dataclasses.replace(declared, kind=hint))
    return fields
