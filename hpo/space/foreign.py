"""Spaces written for other tools, converted into hpo's space format when they are loaded.

Two formats are recognised (to_hpo_space; `hpo space convert FILE` prints the result):

A W&B sweep (a mapping with `parameters:` and `method:`):

    method: bayes                      # random | grid | bayes
    metric: {name: val_loss, goal: minimize}
    run_cap: 20                        # -> budget.trials
    early_terminate: {type: hyperband, eta: 3}
    parameters:
      train.learning_rate: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-2}
      train.optim: {values: [adamw, sgd]}
      model: {parameters: {n_layer: {min: 1, max: 4}}}   # nested: model.n_layer

  method random -> Optuna's random sampler (Ray: searcher random); grid -> the grid sampler
  (Ray: searcher grid), every point once; bayes -> TPE, hpo's default model-based sampler
  (Ray: searcher optuna). W&B's bayes is a Gaussian process; TPE was chosen because it keeps
  hpo's median pruner and handles categorical params; write `driver: {optuna: {sampler: gp}}`
  in the converted file for a GP. early_terminate hyperband -> the hyperband pruner (eta ->
  reduction_factor). Distributions: constant, categorical, uniform, int_uniform, q_uniform
  (the multiples of q in [min, max]), log_uniform_values, log_uniform (min and max are
  natural logs). Refused, having no equivalent in hpo's space: q_log_uniform(_values),
  inv_log_uniform(_values), normal, log_normal, beta and their q_ forms, and `probabilities`.
  Kept out, with a note: program, command, name, project, entity, metric.target.

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

A converted space is then checked exactly as a hand-written one; its errors name hpo's keys.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from typing import Any

from hpo.space.search_space import SpaceError
from runner.yaml_io import excerpt

MAX_TUNE_TEXT = 2000  # characters of one tune.* value: a space needs a few dozen
# a value meant for Ray: refused unless it is one allowed tune.NAME(...) call
_TUNE_VALUE = re.compile(r"\s*tune\s*\.")
_HPO_TOP_KEYS = ("experiment", "objective", "budget", "driver", "description")

WANDB_TOP_KEYS = (
    "method",
    "metric",
    "parameters",
    "run_cap",
    "early_terminate",
    "description",
    "name",
    "program",
    "command",
    "project",
    "entity",
)
_WANDB_NOTED = {
    "name": "the study's name is --study (default: the file's name)",
    "program": "hpo runs the experiment or --objective (or, where built in, --command)",
    "command": "hpo runs the experiment or --objective (or, where built in, --command)",
    "project": "MLflow's experiment is named after the study",
    "entity": "MLflow's experiment is named after the study",
}
_WANDB_METHODS = {  # method -> (Optuna's sampler, Ray's searcher)
    "random": ("random", "random"),
    "grid": ("grid", "grid"),
    "bayes": ("tpe", "optuna"),
}
_WANDB_REFUSED = {
    "q_log_uniform": "a log scale with a step",
    "q_log_uniform_values": "a log scale with a step",
    "inv_log_uniform": "an inverse log scale",
    "inv_log_uniform_values": "an inverse log scale",
    "normal": "a normal distribution",
    "q_normal": "a normal distribution",
    "log_normal": "a log-normal distribution",
    "q_log_normal": "a log-normal distribution",
    "beta": "a beta distribution",
    "q_beta": "a beta distribution",
}
_WANDB_FIELDS = {  # distribution -> the fields it takes besides `distribution`
    "constant": ("value",),
    "categorical": ("values",),
    "uniform": ("min", "max"),
    "int_uniform": ("min", "max"),
    "q_uniform": ("min", "max", "q"),
    "log_uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
}

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

Fail = Callable[[str, str], SpaceError]


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
        if isinstance(raw["params"], dict) and any(_is_tune(v) for v in raw["params"].values()):
            params = {
                name: _tune_spec(spec, f"params.{name}", fail) if _is_tune(spec) else spec
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
    if any(k in raw for k in ("param_space", "config")) or _has_tune_value(raw):
        return from_ray(raw, fail, origins)
    return raw, []


# ----------------------------------------------------------------------------- W&B


def from_wandb(
    raw: dict[str, Any], fail: Fail, origins: dict[str, str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """hpo's space from a W&B sweep configuration."""
    notes: list[str] = []
    for key in raw:
        if key not in WANDB_TOP_KEYS:
            raise fail(str(key), "not a key of a W&B sweep, nor one hpo converts")
    method = raw.get("method")
    if method not in _WANDB_METHODS:
        raise fail("method", f"expected random, grid or bayes, got {excerpt(method)}")
    sampler, searcher = _WANDB_METHODS[method]
    driver: dict[str, Any] = {"optuna": {"sampler": sampler}, "ray": {"searcher": searcher}}
    space: dict[str, Any] = {}
    if raw.get("description") is not None:
        space["description"] = raw["description"]
    for key, why in _WANDB_NOTED.items():
        if key in raw:
            notes.append(f"{key}: not converted; {why}")
    metric = raw.get("metric")
    if metric is not None:
        if not isinstance(metric, dict) or not isinstance(metric.get("name"), str):
            raise fail("metric", "expected {name: METRIC, goal: minimize|maximize}")
        for key in metric:
            if key not in ("name", "goal", "target"):
                raise fail(f"metric.{key}", "unknown field; a W&B metric has name, goal, target")
        goal = metric.get("goal", "minimize")
        if goal not in ("minimize", "maximize"):
            raise fail("metric.goal", f"expected minimize or maximize, got {excerpt(goal)}")
        space["objective"] = {"metric": metric["name"], "direction": goal}
        if "target" in metric:
            notes.append("metric.target: not converted; an hpo study runs its whole budget")
    elif method == "bayes":
        raise fail("metric", "method bayes needs a metric to model: {name: ..., goal: ...}")
    else:
        notes.append("metric: none given; hpo optimizes val_loss (minimize)")
    early = raw.get("early_terminate")
    if early is not None:
        if not isinstance(early, dict) or early.get("type") != "hyperband":
            raise fail("early_terminate.type", "expected hyperband, W&B's only early_terminate")
        eta = early.get("eta", 3)
        if not isinstance(eta, int) or isinstance(eta, bool) or eta < 2:
            raise fail("early_terminate.eta", f"expected a whole number >= 2, got {excerpt(eta)}")
        driver["optuna"].update(pruner="hyperband", reduction_factor=eta)
        driver["ray"]["scheduler"] = "hyperband"
        left = sorted(k for k in early if k not in ("type", "eta"))
        if left:
            notes.append(
                f"early_terminate: {', '.join(left)} not converted; hyperband's brackets follow "
                "the trials' steps"
            )
    budget: dict[str, Any] = {}
    run_cap = raw.get("run_cap")
    if run_cap is not None:
        if not isinstance(run_cap, int) or isinstance(run_cap, bool) or run_cap < 1:
            raise fail("run_cap", f"expected a whole number >= 1, got {excerpt(run_cap)}")
        budget["trials"] = run_cap
    elif method == "grid":
        budget["trials"] = None  # every point of the grid, once
    if budget:
        space["budget"] = budget
    space["driver"] = driver
    parameters = raw.get("parameters")
    if not isinstance(parameters, dict) or not parameters:
        raise fail("parameters", "expected a mapping of at least one parameter")
    space["params"] = {}
    origins = {} if origins is None else origins
    origins.update({"objective": "metric", "budget": "run_cap", "driver": "method"})
    _wandb_params(parameters, "", "parameters", space["params"], fail, origins)
    return space, notes


def _wandb_params(
    parameters: dict[str, Any],
    prefix: str,
    where: str,
    out: dict[str, Any],
    fail: Fail,
    origins: dict[str, str],
) -> None:
    for name, spec in parameters.items():
        key, dotted = f"{where}.{name}", f"{prefix}{name}"
        if not isinstance(spec, dict):
            raise fail(key, "expected a mapping such as {values: [...]} or {min: 0, max: 1}")
        if "parameters" in spec:
            if set(spec) != {"parameters"} or not isinstance(spec["parameters"], dict):
                raise fail(key, "a nested group holds only `parameters: {...}`")
            _wandb_params(spec["parameters"], f"{dotted}.", f"{key}.parameters", out, fail, origins)
            continue
        out[dotted] = _wandb_param(spec, key, fail)
        origins[f"params.{dotted}"] = key


def _wandb_param(spec: dict[str, Any], key: str, fail: Fail) -> Any:
    if "probabilities" in spec:
        raise fail(f"{key}.probabilities", "hpo samples choices uniformly: no equivalent")
    kind = spec.get("distribution")
    if kind is None:  # W&B infers it from the fields given
        if "values" in spec:
            kind = "categorical"
        elif "value" in spec:
            kind = "constant"
        elif all(_is_int(spec.get(k)) for k in ("min", "max")):
            kind = "int_uniform"
        else:
            kind = "uniform"
    if kind in _WANDB_REFUSED:
        raise fail(f"{key}.distribution", f"{kind} is {_WANDB_REFUSED[kind]}: no equivalent")
    if kind not in _WANDB_FIELDS:
        raise fail(f"{key}.distribution", f"unknown W&B distribution {excerpt(kind)}")
    accepted = (*_WANDB_FIELDS[kind], "distribution")
    for name in spec:
        if name not in accepted:
            raise fail(f"{key}.{name}", f"not a field of distribution {kind}")
    if kind == "constant":
        return {"type": "fixed", "value": spec.get("value")}
    if kind == "categorical":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise fail(f"{key}.values", "expected a non-empty list")
        return {"type": "categorical", "choices": values}
    low = _number(spec.get("min"), f"{key}.min", fail)
    high = _number(spec.get("max"), f"{key}.max", fail)
    if kind == "int_uniform":
        for name, value in (("min", low), ("max", high)):
            if not _is_int(value):
                raise fail(f"{key}.{name}", f"int_uniform takes whole numbers, got {value!r}")
        return {"type": "int", "low": low, "high": high}
    if kind == "uniform":
        return {"type": "float", "low": float(low), "high": float(high)}
    if kind == "log_uniform_values":
        return {"type": "float", "low": float(low), "high": float(high), "log": True}
    if kind == "log_uniform":  # min and max are natural logs of the bounds
        return {
            "type": "float",
            "low": _round(math.exp(low)),
            "high": _round(math.exp(high)),
            "log": True,
        }
    q = _number(spec.get("q", 1), f"{key}.q", fail)
    return _multiples(low, high, q, key, fail, whole=False)


# ----------------------------------------------------------------------------- Ray Tune


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
        elif _is_tune(value):
            out[key] = _tune_spec(value, f"{prefix}{key}", fail)
        else:
            out[key] = {"type": "fixed", "value": value}  # Tune passes constants through


def _is_tune(value: Any) -> bool:
    return isinstance(value, str) and _TUNE_VALUE.match(value) is not None


def _has_tune_value(tree: Any) -> bool:
    if isinstance(tree, dict):
        return any(_has_tune_value(v) for v in tree.values())
    return _is_tune(tree)


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


def _tune_spec(text: str, key: str, fail: Fail) -> dict[str, Any]:
    name, args = parse_tune_call(text, key, fail)
    if name in ("choice", "grid_search"):
        choices = args.get("categories", args.get("values"))
        if not isinstance(choices, list | tuple) or not choices:
            raise fail(key, f"tune.{name}: expected a non-empty list")
        spec: dict[str, Any] = {"type": "categorical", "choices": list(choices)}
        if name == "grid_search":
            spec["_grid"] = True
        return spec
    low = _number(args["lower"], key, fail)
    high = _number(args["upper"], key, fail)
    if "base" in args:  # any base gives the same log-uniform distribution
        base = _number(args["base"], key, fail)
        if base <= 0 or base == 1:
            raise fail(key, f"tune.{name}: base must be > 0 and not 1, got {base!r}")
    if name == "uniform":
        return {"type": "float", "low": float(low), "high": float(high)}
    if name == "loguniform":
        return {"type": "float", "low": float(low), "high": float(high), "log": True}
    if name == "quniform":
        return _multiples(low, high, _number(args["q"], key, fail), key, fail, whole=False)
    for bound in (low, high):
        if not _is_int(bound):
            raise fail(key, f"tune.{name} takes whole numbers, got {bound!r}")
    if name in ("randint", "lograndint"):  # Ray's upper bound is exclusive
        spec = {"type": "int", "low": low, "high": high - 1}
        return {**spec, "log": True} if name == "lograndint" else spec
    q = args.get("q", 1)
    if q == 1:  # qrandint with q=1 is randint: upper exclusive
        return {"type": "int", "low": low, "high": high - 1}
    return _multiples(low, high, _number(q, key, fail), key, fail, whole=True)


# ----------------------------------------------------------------------------- numbers


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any, key: str, fail: Fail) -> int | float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-5 as text
        try:
            value = float(value)
        except ValueError:
            pass
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise fail(key, f"expected a finite number, got {excerpt(value)}")
    return value


def _round(value: float) -> float:
    return float(f"{value:.12g}")


def _multiples(low: float, high: float, q: float, key: str, fail: Fail, whole: bool) -> dict:
    """The multiples of q in [low, high], what W&B's q_uniform and Ray's quniform/qrandint
    draw (round(x / q) * q), as hpo's stepped range."""
    if q <= 0 or (whole and not _is_int(q)):
        raise fail(key, f"q must be a {'whole number ' if whole else 'number '}> 0, got {q!r}")

    def index(bound: float, up: bool) -> int:
        ratio = bound / q
        nearest = round(ratio)
        if abs(ratio - nearest) <= 1e-9 * max(1.0, abs(ratio)):
            return nearest
        return math.ceil(ratio) if up else math.floor(ratio)

    first, last = index(low, up=True), index(high, up=False)
    if last <= first:
        raise fail(key, f"fewer than two multiples of q={q!r} lie in [{low!r}, {high!r}]")
    if whole:
        return {"type": "int", "low": first * q, "high": last * q, "step": q}
    return {"type": "float", "low": _round(first * q), "high": _round(last * q), "step": q}
