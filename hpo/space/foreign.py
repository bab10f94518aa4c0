"""Spaces written for other tools, converted into hpo's space format when they are loaded.

Two formats are recognised (to_hpo_space; `hpo space convert FILE` prints the result):

A W&B sweep (a mapping with `parameters:` and `method:`; hpo.space.wandb_sweep) and a Ray
Tune-style space (values written as calls of ray.tune's sampling functions, e.g.
`tune.loguniform(1e-4, 1e-2)`; hpo.space.ray_space): their modules say what each field becomes
and what is refused. tune.* strings are also accepted as param values inside hpo's own
`params:`.

A converted space is then checked exactly as a hand-written one; its errors name hpo's keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpo.space.ray_space import from_ray, has_tune_value, is_tune, parse_tune_call, tune_spec
from hpo.space.search_space import SpaceError
from hpo.space.wandb_sweep import from_wandb
from runner.yaml_io import excerpt

# parse_tune_call, from_wandb and from_ray were defined here before the converters split
__all__ = ["from_ray", "from_wandb", "parse_tune_call", "to_hpo_space", "with_original_key"]


def to_hpo_space(raw: Any, source: str) -> tuple[Any, list[str], Callable[[str], str]]:
    """(hpo's space dict, notes, original_key) from a W&B sweep or a Ray Tune-style space;
    anything else, hpo's own format included, comes back as it is (with tune.* param values
    converted).

    notes: what was left out and why (`hpo space convert` prints them). original_key: the key
    of the original file that an hpo key (params.NAME.low) came from, for the errors of the
    checks that follow. Raises SpaceError "SOURCE: what (KEY)" naming the key of the original
    file for what has no equivalent.
    """
    origins: dict[str, str] = {}  # hpo key -> the original file's key
    space, notes = _convert(raw, source, origins)
    return space, notes, lambda key: _original_key(key, origins)


def with_original_key(error: SpaceError, original_key: Callable[[str], str]) -> SpaceError:
    """The error "SOURCE: what (KEY)" naming, instead of an hpo KEY, the converted file's key."""
    message, key = str(error), error.key
    if key is None or not message.endswith(f" ({key})"):
        return error
    return SpaceError(f"{message[: -len(key) - 3]} ({original_key(key)})")


def _original_key(key: str, origins: dict[str, str]) -> str:
    for hpo_key in sorted(origins, key=len, reverse=True):
        if key == hpo_key or key.startswith(f"{hpo_key}."):
            where, rest = origins[hpo_key], key[len(hpo_key) + 1 :]
            if not rest or not where.startswith("parameters."):  # a Ray value: the whole call
                return where
            field = rest.split(".", 1)[0]
            return f"{where}.{_FIELD_NAMES.get(field, field)}"
    return key


# hpo's field names -> W&B's (a W&B param's error names the field of the sweep file)
_FIELD_NAMES = {
    "low": "min",
    "high": "max",
    "choices": "values",
    "type": "distribution",
    "step": "q",
}


def _convert(raw: Any, source: str, origins: dict[str, str]) -> tuple[Any, list[str]]:

    def fail(key: str, problem: str) -> SpaceError:
        return SpaceError(f"{source}: {problem} ({excerpt(key, 120)[1:-1]})")

    if not isinstance(raw, dict):
        return raw, []
    if "parameters" in raw and "params" not in raw:
        return from_wandb(raw, fail, origins)
    if "params" in raw:
        if isinstance(raw["params"], dict) and any(is_tune(v) for v in raw["params"].values()):
            params = {
                name: tune_spec(spec, f"params.{name}", fail) if is_tune(spec) else spec
                for name, spec in raw["params"].items()
            }
            if any(isinstance(s, dict) and s.get("_grid") for s in params.values()):
                raise fail(
                    "params",
                    "tune.grid_search inside hpo's params: use a space of "
                    "categorical params with driver: {optuna: {sampler: grid}}",
                )
            return {**raw, "params": params}, []
        return raw, []
    if any(k in raw for k in ("param_space", "config")) or has_tune_value(raw):
        return from_ray(raw, fail, origins)
    return raw, []
