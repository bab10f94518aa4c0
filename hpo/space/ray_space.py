"""A Ray Tune-style space, converted into hpo's space format (hpo.space.foreign.to_hpo_space).

A Ray Tune-style space (values written as calls of ray.tune's sampling functions):

    metric: val_loss                   # optional, Tune's TuneConfig(metric=, mode=)
    mode: min
    num_samples: 20                    # -> budget.trials
    param_space:                       # or config:, or the params at the top level
      train:
        learning_rate: tune.loguniform(1e-4, 1e-2)
        optim: tune.choice(["adamw", "sgd"])
        warmup_steps: tune.randint(0, 100)       # upper bound exclusive, as in Ray

  tune.uniform, quniform (multiples of q), loguniform, randint and lograndint (upper
  exclusive), qrandint (multiples of q, upper inclusive; q=1: exclusive, as in Ray), choice,
  grid_search (only when every searched param is one: hpo's grid sampler; a grid crossed with
  sampled params has no equivalent). Refused: sample_from, randn, qrandn, qloguniform,
  qlograndint and every other name. The strings are never evaluated: each is parsed with
  Python's ast (which runs nothing), its function must be `tune.NAME` with NAME in the table
  below, and each argument must be a literal (ast.literal_eval on that argument alone).
  Any string value that starts with `tune.` must be such a call (a typo is an error, not a
  constant); other strings are constants. tune.* strings are also accepted as param values
  inside hpo's own `params:`.
"""

from __future__ import annotations

import ast
import re
from typing import Any

from hpo.space.foreign_numbers import Fail, finite_number, is_int, multiples
from runner.yaml_io import excerpt

MAX_TUNE_TEXT = 2000  # characters of one tune.* value: a space needs a few dozen
# a value meant for Ray: refused unless it is one allowed tune.NAME(...) call
_TUNE_VALUE = re.compile(r"\s*tune\s*\.")
_HPO_TOP_KEYS = ("experiment", "objective", "budget", "driver", "description")

# tune.NAME -> (its parameters in order, how many of the first are required)
TUNE_FUNCTIONS: dict[str, tuple[tuple[str, ...], int]] = {
    "uniform": (("lower", "upper"), 2),
    "quniform": (("lower", "upper", "q"), 3),
    "loguniform": (("lower", "upper", "base"), 2),
    "randint": (("lower", "upper"), 2),
    "qrandint": (("lower", "upper", "q"), 2),
    "lograndint": (("lower", "upper", "base"), 2),
    "choice": (("categories",), 1),
    "grid_search": (("values",), 1),
}
_TUNE_REFUSED = {
    "sample_from": "a Python function, which a YAML file cannot hold and hpo never runs",
    "randn": "a normal distribution",
    "qrandn": "a normal distribution",
    "qloguniform": "a log scale with a step",
    "qlograndint": "a log scale with a step",
}


def from_ray(
    raw: dict[str, Any], fail: Fail, origins: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """hpo's space from a Ray Tune-style YAML (tune.* calls written as strings)."""
    space: dict[str, Any] = {k: raw[k] for k in _HPO_TOP_KEYS if k in raw}
    notes: list[str] = []
    tune_keys = ("metric", "mode", "num_samples")
    holders = [k for k in ("param_space", "config") if k in raw]
    if len(holders) > 1:
        raise fail(holders[1], "give the params once: param_space or config")
    if holders:
        where = holders[0]
        params_raw = raw[where]
        if not isinstance(params_raw, dict) or not params_raw:
            raise fail(where, "expected a mapping of params")
        for key in raw:
            if key not in (*_HPO_TOP_KEYS, *tune_keys, where):
                raise fail(str(key), f"unknown key beside {where}")
        prefix = f"{where}."
    else:
        params_raw = {k: v for k, v in raw.items() if k not in (*_HPO_TOP_KEYS, *tune_keys)}
        prefix = ""
    if "metric" in raw or "mode" in raw:
        if "objective" in raw:
            raise fail("metric", "give the objective once: metric/mode or objective")
        metric = raw.get("metric", "val_loss")
        if not isinstance(metric, str):
            raise fail("metric", f"expected a metric's name, got {excerpt(metric)}")
        mode = raw.get("mode", "min")
        if mode not in ("min", "max"):
            raise fail("mode", f"expected min or max, got {excerpt(mode)}")
        space["objective"] = {"metric": metric, "direction": f"{mode}imize"}
    params: dict[str, Any] = {}
    origins = {} if origins is None else origins
    _ray_params(params_raw, "", prefix, params, fail, origins)
    if "metric" in raw or "mode" in raw:
        origins["objective"] = "metric"
    if "num_samples" in raw:
        origins["budget"] = "num_samples"
    grids = [name for name, spec in params.items() if isinstance(spec, dict) and spec.get("_grid")]
    sampled = [
        name
        for name, spec in params.items()
        if isinstance(spec, dict) and spec.get("type") != "fixed" and not spec.get("_grid")
    ]
    for name in grids:
        del params[name]["_grid"]
    if grids and sampled:
        raise fail(
            f"{prefix}{sampled[0]}",
            "tune.grid_search crossed with sampled params has no equivalent: hpo's grid "
            "sampler needs every searched param to be a grid (or use tune.choice)",
        )
    budget = dict(space.get("budget") or {})
    if "num_samples" in raw:
        samples = raw["num_samples"]
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise fail("num_samples", f"expected a whole number >= 1, got {excerpt(samples)}")
        if grids and samples > 1:
            raise fail(
                "num_samples", "repeating a grid has no equivalent: hpo runs each point once"
            )
        if not grids:
            budget["trials"] = samples
    if grids:
        space["driver"] = {
            **(space.get("driver") or {}),
            "optuna": {"sampler": "grid"},
            "ray": {"searcher": "grid"},
        }
        budget.setdefault("trials", None)
    if budget:
        space["budget"] = budget
    if not params:
        raise fail(prefix.rstrip(".") or "params", "no params found")
    space["params"] = params
    return space, notes


def _ray_params(
    tree: dict[str, Any], dotted: str, prefix: str, out: dict, fail: Fail, origins: dict
) -> None:
    for name, value in tree.items():
        key = f"{dotted}{name}"
        origins[f"params.{key}"] = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            _ray_params(value, f"{key}.", prefix, out, fail, origins)
        elif is_tune(value):
            out[key] = tune_spec(value, f"{prefix}{key}", fail)
        else:
            out[key] = {"type": "fixed", "value": value}  # Tune passes constants through


def is_tune(value: Any) -> bool:
    return isinstance(value, str) and _TUNE_VALUE.match(value) is not None


def has_tune_value(tree: Any) -> bool:
    if isinstance(tree, dict):
        return any(has_tune_value(v) for v in tree.values())
    return is_tune(tree)


def parse_tune_call(text: str, key: str, fail: Fail) -> tuple[str, dict[str, Any]]:
    """(NAME, {parameter: value}) of the string "tune.NAME(args)", running nothing.

    The string is parsed by ast (no evaluation); its root must be one call of tune.NAME with
    NAME in TUNE_FUNCTIONS, and every argument a literal, read by ast.literal_eval alone.
    """
    if len(text) > MAX_TUNE_TEXT:
        raise fail(key, f"a tune.* value of {len(text)} characters; at most {MAX_TUNE_TEXT}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise fail(key, f"{excerpt(text, 80)} is not a tune.NAME(...) call") from None
    call = tree.body
    if not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "tune"
    ):
        raise fail(key, f"{excerpt(text, 80)} is not one tune.NAME(...) call")
    name = call.func.attr
    if name in _TUNE_REFUSED:
        raise fail(key, f"tune.{name} is {_TUNE_REFUSED[name]}: no equivalent in hpo's space")
    if name not in TUNE_FUNCTIONS:
        known = ", ".join(f"tune.{n}" for n in TUNE_FUNCTIONS)
        raise fail(key, f"tune.{excerpt(name, 40)[1:-1]} is not converted; use one of {known}")
    names, required = TUNE_FUNCTIONS[name]
    if any(isinstance(a, ast.Starred) for a in call.args) or any(
        k.arg is None for k in call.keywords
    ):
        raise fail(key, f"tune.{name}: write the arguments out (no * or **)")
    if len(call.args) > len(names):
        raise fail(key, f"tune.{name} takes at most {len(names)} arguments ({', '.join(names)})")
    nodes = dict(zip(names, call.args, strict=False))
    for keyword in call.keywords:
        if keyword.arg not in names or keyword.arg in nodes:
            raise fail(key, f"tune.{name}: unexpected argument {excerpt(keyword.arg, 40)}")
        nodes[keyword.arg] = keyword.value
    missing = [n for n in names[:required] if n not in nodes]
    if missing:
        raise fail(key, f"tune.{name}: missing {', '.join(missing)}")
    values = {}
    for parameter, node in nodes.items():
        try:
            values[parameter] = ast.literal_eval(node)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            raise fail(
                key, f"tune.{name}: {parameter} must be a literal (a number, text or a list)"
            ) from None
    return name, values


def tune_spec(text: str, key: str, fail: Fail) -> dict[str, Any]:
    name, args = parse_tune_call(text, key, fail)
    if name in ("choice", "grid_search"):
        choices = args.get("categories", args.get("values"))
        if not isinstance(choices, list | tuple) or not choices:
            raise fail(key, f"tune.{name}: expected a non-empty list")
        spec: dict[str, Any] = {"type": "categorical", "choices": list(choices)}
        if name == "grid_search":
            spec["_grid"] = True
        return spec
    low = finite_number(args["lower"], key, fail)
    high = finite_number(args["upper"], key, fail)
    if "base" in args:  # any base gives the same log-uniform distribution
        base = finite_number(args["base"], key, fail)
        if base <= 0 or base == 1:
            raise fail(key, f"tune.{name}: base must be > 0 and not 1, got {base!r}")
    if name == "uniform":
        return {"type": "float", "low": float(low), "high": float(high)}
    if name == "loguniform":
        return {"type": "float", "low": float(low), "high": float(high), "log": True}
    if name == "quniform":
        return multiples(low, high, finite_number(args["q"], key, fail), key, fail, whole=False)
    for bound in (low, high):
        if not is_int(bound):
            raise fail(key, f"tune.{name} takes whole numbers, got {bound!r}")
    if name in ("randint", "lograndint"):  # Ray's upper bound is exclusive
        spec = {"type": "int", "low": low, "high": high - 1}
        return {**spec, "log": True} if name == "lograndint" else spec
    q = args.get("q", 1)
    if q == 1:  # qrandint with q=1 is randint: upper exclusive
        return {"type": "int", "low": low, "high": high - 1}
    return multiples(low, high, finite_number(q, key, fail), key, fail, whole=True)
