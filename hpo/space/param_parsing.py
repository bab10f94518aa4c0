"""The params of a space given as a dict: each one's distribution checked and built, its key
checked against the runner's config (config_key_check), and the params ordered so that each
comes after those its `when:` conditions name (a cycle is refused). Part of hpo.space.parsing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpo.space.distributions import Categorical, Distribution, Fixed, Float, Int
from hpo.space.numeric import (
    MAX_MAGNITUDE,
    STEP,
    Fail,
    is_multiple,
    is_number,
    parse_number,
)
from hpo.space.search_space import (
    Param,
    SpaceError,
)
from hpo.terminal import check_param_key, printable
from runner.errors import UserInputError
from runner.schema import Allowed, checked
from runner.yaml_io import excerpt

KeyCheck = Callable[[str, str], None]  # check_key(key, source): raises on unknown config keys
FLAG = Allowed(kind=bool)  # log

_SPEC_KEYS = {
    "float": ("type", "low", "high", "log", "step", "when"),
    "int": ("type", "low", "high", "log", "step", "when"),
    "categorical": ("type", "choices", "when"),
    "fixed": ("type", "value", "when"),
}


def parse_params(raw: dict, fail: Fail, source: str, check: KeyCheck | None) -> tuple[Param, ...]:
    parsed: dict[str, tuple[Distribution, dict]] = {}
    for name, spec in raw.items():
        unsafe = check_param_key(name)  # keys reach folders, MLflow and the terminal
        if unsafe:
            raise fail(f"params.{printable(repr(name), 80)}", unsafe)
        if check is not None:
            try:
                check(str(name), f"{source}: params")
            except UserInputError as err:
                raise SpaceError(str(err)) from None
        parsed[str(name)] = _parse_distribution(spec, f"params.{name}", fail)
    params = {}
    for name, (distribution, when) in parsed.items():
        condition = []
        for other, allowed in when.items():
            key = f"params.{name}.when"
            if other not in parsed:
                raise fail(
                    key, f"condition on unknown param '{other}'{did_you_mean(other, parsed)}"
                )
            parent = parsed[other][0]
            if not isinstance(parent, Categorical):
                raise fail(key, f"condition on '{other}', which is not categorical")
            values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
            for value in values:
                if not parent.contains(value):
                    choices = ", ".join(map(str, parent.choices))
                    raise fail(key, f"{excerpt(value)} is not a choice of '{other}' ({choices})")
            condition.append((other, values))
        params[name] = Param(name, distribution, tuple(condition))
    return _parents_first(params, fail)


def _parse_distribution(spec: Any, key: str, fail: Fail) -> tuple[Distribution, dict]:
    if isinstance(spec, list):
        raise fail(key, "a bare list is ambiguous: write {type: categorical, choices: [...]}")
    if not isinstance(spec, dict):
        return Fixed(spec), {}
    kind = spec.get("type") or ("categorical" if "choices" in spec else None)
    kind = "fixed" if kind is None and "value" in spec else kind
    if not isinstance(kind, str) or kind not in _SPEC_KEYS:
        raise fail(f"{key}.type", f"expected float, int, categorical or fixed, got {excerpt(kind)}")
    for name in spec:
        if name not in _SPEC_KEYS[kind]:
            raise fail(
                f"{key}.{name}", f"unknown field for {kind}{did_you_mean(name, _SPEC_KEYS[kind])}"
            )
    when = spec.get("when") or {}
    if not isinstance(when, dict):
        raise fail(f"{key}.when", "expected a mapping {param: value or [values]}")
    if kind == "fixed":
        return Fixed(spec.get("value")), when
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise fail(f"{key}.choices", "expected a non-empty list of choices")
        if not all(c is None or isinstance(c, str | int | float | bool) for c in choices):
            raise fail(f"{key}.choices", "choices must be scalars (str, number, bool or null)")
        if any(
            isinstance(c, float | int) and not isinstance(c, bool) and not is_number(c)
            for c in choices
        ):
            raise fail(f"{key}.choices", "number choices must be finite (no .nan or .inf)")
        if len({(type(c), c) for c in choices}) != len(choices):
            raise fail(f"{key}.choices", "choices must be unique")
        return Categorical(tuple(choices)), when
    low, high = (
        parse_number(spec.get("low"), f"{key}.low", fail),
        parse_number(spec.get("high"), f"{key}.high", fail),
    )
    log = checked(spec.get("log", False), FLAG, f"{key}.log", fail)
    if low >= high:
        raise fail(key, f"low ({low:g}) must be below high ({high:g})")
    if log and low <= 0:
        raise fail(key, f"a log scale needs low > 0, got {low:g}")
    step = None if spec.get("step") is None else checked(spec["step"], STEP, f"{key}.step", fail)
    if step is not None:
        if log:
            raise fail(f"{key}.step", "step and log cannot be combined")
        if (high - low) / step > MAX_MAGNITUDE:  # inf for a subnormal step: no int of it
            raise fail(
                f"{key}.step",
                f"{step:g} is too small: more than {MAX_MAGNITUDE:g} values from low to high",
            )
        if not is_multiple(high - low, step):
            raise fail(f"{key}.step", f"{step:g} does not divide high - low ({high - low:g})")
    if kind == "float":
        return Float(float(low), float(high), log, None if step is None else float(step)), when
    for name, value in (("low", low), ("high", high), ("step", step or 1)):
        if not float(value).is_integer():
            raise fail(f"{key}.{name}", f"an int range needs whole numbers, got {value:g}")
    return Int(int(low), int(high), log, int(step or 1)), when


def _parents_first(params: dict[str, Param], fail: Fail) -> tuple[Param, ...]:
    ordered: dict[str, Param] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in chain:
            raise fail(f"params.{name}.when", f"conditions form a cycle: {' -> '.join(chain)}")
        if name not in ordered:
            for parent, _ in params[name].condition:
                visit(parent, (*chain, name))
            ordered[name] = params[name]

    for name in params:
        visit(name, ())
    return tuple(ordered.values())


def did_you_mean(name: Any, valid: Any) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
