"""The config's dotted keys (train.learning_rate, tasks.N.KEY) and the check of an unknown one."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import typing

from runner.config.trial import TrialConfig
from runner.errors import ConfigError
from runner.task_config import KEYS as TASK_KEYS
from runner.yaml_io import excerpt

# tasks.N.KEY: a key of the experiment's N-th task (multitask), for -o and search spaces
TASK_ITEM_KEY = re.compile(r"tasks\.(\d{1,2})\.(\w+)")


def config_keys() -> list[str]:
    """Every dotted leaf key of TrialConfig, e.g. 'train.learning_rate'."""
    return list(_config_keys())


@functools.cache
def _config_keys() -> tuple[str, ...]:
    # cached: validating a search space checks every key of hundreds of points
    keys: list[str] = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                keys.append(prefix + f.name)

    walk(TrialConfig, "")
    return tuple(keys)


def check_key(key: str, source: str) -> None:
    """Raise ConfigError naming `key` and suggesting the closest valid key when it is unknown."""
    valid = config_keys()
    if key in valid:
        return
    task_key = TASK_ITEM_KEY.fullmatch(key)
    if task_key is not None and task_key.group(2) in TASK_KEYS:
        return
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise ConfigError(f"{source}: unknown config key {excerpt(key)}{hint}")
