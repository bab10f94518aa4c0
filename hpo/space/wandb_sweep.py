"""A W&B sweep, converted into hpo's space format (hpo.space.foreign.to_hpo_space).

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
"""

from __future__ import annotations

import math
from typing import Any

from hpo.space.foreign_numbers import Fail, finite_number, is_int, multiples, rounded
from runner.yaml_io import excerpt

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
        elif all(is_int(spec.get(k)) for k in ("min", "max")):
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
    low = finite_number(spec.get("min"), f"{key}.min", fail)
    high = finite_number(spec.get("max"), f"{key}.max", fail)
    if kind == "int_uniform":
        for name, value in (("min", low), ("max", high)):
            if not is_int(value):
                raise fail(f"{key}.{name}", f"int_uniform takes whole numbers, got {value!r}")
        return {"type": "int", "low": low, "high": high}
    if kind == "uniform":
        return {"type": "float", "low": float(low), "high": float(high)}
    if kind == "log_uniform_values":
        return {"type": "float", "low": float(low), "high": float(high), "log": True}
    if kind == "log_uniform":  # min and max are natural logs of the bounds
        return {
            "type": "float",
            "low": rounded(math.exp(low)),
            "high": rounded(math.exp(high)),
            "log": True,
        }
    q = finite_number(spec.get("q", 1), f"{key}.q", fail)
    return multiples(low, high, q, key, fail, whole=False)
