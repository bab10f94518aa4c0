"""A nested dict of YAML values as the typed, frozen dataclasses: each value checked against
its annotation, converted only where YAML is ambiguous."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, get_args, get_origin

from runner.config.keys import check_key
from runner.errors import ConfigError
from runner.task_config import TaskConfig, build_tasks
from runner.yaml_io import excerpt


def build(cls: type, raw: Any, prefix: str, source: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'config'}: expected a mapping")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            check_key(f"{prefix}{key}", source)
    values = {}
    for f in dataclasses.fields(cls):
        if f.name not in raw:
            continue
        hint = hints[f.name]
        key = prefix + f.name
        if dataclasses.is_dataclass(hint):
            values[f.name] = build(hint, raw[f.name] or {}, key + ".", source)
        else:
            values[f.name] = _coerce(raw[f.name], hint, key, source)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check `value` against the annotation, converting only where YAML is ambiguous."""
    origin = get_origin(hint)
    if origin is tuple and get_args(hint)[0] is TaskConfig:
        return build_tasks(value, source, _coerce)
    if origin in (typing.Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return None
        inner = [o for o in options if o is not type(None)]
        return _coerce(value, inner[0], key, source)
    if origin is Literal:
        choices = get_args(hint)
        if not any(value == c and type(value) is type(c) for c in choices):
            raise ConfigError(
                f"{source}: unknown value {excerpt(value)}; choose one of "
                f"{', '.join(map(str, choices))} ({key})"
            )
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        number = _as_float(value)
        if number is not None:
            return number
    elif hint is str:
        if isinstance(value, str):
            return value
    raise ConfigError(
        f"{source}: expected {getattr(hint, '__name__', hint)}, got {excerpt(value)} ({key})"
    )


def _as_float(value: Any) -> float | None:
    # YAML 1.1 reads `1e-5` (no dot) as a string: accept any numeric text as a number.
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            return float(value)
    except (ValueError, OverflowError):  # not a number, or an int beyond float's range
        return None
    return None
