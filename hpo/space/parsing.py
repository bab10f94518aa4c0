"""A space given as a dict (a space file's YAML) checked and turned into a SearchSpace.

Every problem raises SpaceError naming the source and the key, before any trial starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hpo.space.driver_options import check_space, resolve_driver_options
from hpo.space.numeric import COUNT, SECONDS, Fail, parse_duration
from hpo.space.param_parsing import KeyCheck, did_you_mean, parse_params
from hpo.space.search_space import (
    DEFAULT_KILL_AFTER,
    Budget,
    Command,
    Objective,
    SearchSpace,
    SpaceError,
)
from runner.config import canonical_metric
from runner.direction import lower_is_better
from runner.schema import Allowed, checked
from runner.yaml_io import excerpt

_TOP_KEYS = ("experiment", "command", "objective", "budget", "driver", "params", "description")


def space_from_dict(
    raw: Any,
    source: str = "<space>",
    experiment: str | None = None,
    driver: str = "optuna",
    config_key_check: KeyCheck | None = None,
) -> SearchSpace:
    """Validate a space given as a dict (what load_space reads from YAML)."""

    def fail(key: str, problem: str) -> SpaceError:
        return SpaceError(f"{source}: {problem} ({excerpt(key, 120)[1:-1]})")

    if not isinstance(raw, dict):
        raise SpaceError(f"{source}: expected a mapping with params, objective, budget, driver")
    for key in raw:
        if key not in _TOP_KEYS:
            raise fail(key, f"unknown section{did_you_mean(key, _TOP_KEYS)}")
    if not isinstance(raw.get("params"), dict) or not raw["params"]:
        raise fail("params", "expected a mapping of at least one dotted config key to its range")
    command = _parse_command(raw["command"], fail, source) if "command" in raw else None
    if command is not None:
        if raw.get("experiment") is not None:
            raise fail("command", "a space runs an experiment or a command, not both")
        config_key_check = None  # the params are the command's, not the runner's config keys
    params = parse_params(raw["params"], fail, source, config_key_check)
    objectives = _parse_objectives(raw.get("objective", "val_loss"), fail)
    if command is None:  # the runner's metrics: transformers' eval_loss is its val_loss
        objectives = tuple(
            dataclasses.replace(o, metric=canonical_metric(o.metric)) for o in objectives
        )
    options = resolve_driver_options(driver, raw.get("driver") or {}, fail)
    budget = _parse_budget(raw.get("budget") or {}, fail, options, driver)
    space = SearchSpace(
        params=params,
        objectives=objectives,
        budget=budget,
        driver=driver,
        driver_options=options,
        experiment=experiment or raw.get("experiment"),
        source=source,
        command=command,
    )
    check_space(space, fail)
    return space


def _parse_command(raw: Any, fail: Fail, source: str) -> Command:
    """`command: LINE` or `command: {run: LINE, kill_after: SECONDS}`."""
    spec = {"run": raw} if isinstance(raw, str) else raw
    if not isinstance(spec, dict):
        raise fail("command", "expected a command line, or {run: LINE, kill_after: SECONDS}")
    for name in spec:
        if name not in ("run", "kill_after"):
            raise fail(f"command.{name}", "unknown field; use run and kill_after")
    if not isinstance(spec.get("run"), str) or not spec["run"].strip():
        key = "command" if isinstance(raw, str) else "command.run"
        raise fail(key, "expected the command line to run for each trial, as a string")
    kill_after = checked(
        spec.get("kill_after", DEFAULT_KILL_AFTER), SECONDS, "command.kill_after", fail
    )
    return Command(spec["run"], kill_after, source)


def _parse_objectives(raw: Any, fail: Fail) -> tuple[Objective, ...]:
    items = raw if isinstance(raw, list) and raw else [raw]
    objectives = []
    for item in items:
        spec = {"metric": item} if isinstance(item, str) else item
        if not isinstance(spec, dict) or not isinstance(spec.get("metric"), str):
            raise fail(
                "objective", "expected {metric: NAME, direction: minimize|maximize} or a list"
            )
        for name in spec:
            if name not in ("metric", "direction"):
                raise fail(f"objective.{name}", "unknown field; use metric and direction")
        metric = spec["metric"]
        direction = spec.get("direction") or ("minimize" if lower_is_better(metric) else "maximize")
        checked(direction, DIRECTION, "objective.direction", fail)
        objectives.append(Objective(metric, direction))
    if len({o.metric for o in objectives}) != len(objectives):
        raise fail("objective", "each metric may appear once")
    return tuple(objectives)


_BUDGET_KEYS = ("trials", "timeout", "max_steps", "max_steps_total")
DIRECTION = Allowed(choices=("minimize", "maximize"))


def _parse_budget(raw: Any, fail: Fail, options: Mapping[str, Any], driver: str) -> Budget:
    if not isinstance(raw, dict):
        raise fail(
            "budget", "expected {trials: N, timeout: SECONDS, max_steps: N, max_steps_total: N}"
        )
    for name in raw:
        if name not in _BUDGET_KEYS:
            raise fail(f"budget.{name}", f"unknown field{did_you_mean(name, _BUDGET_KEYS)}")
    # a step budget alone replaces the default trial count: pruned trials then buy more trials
    default_trials = None if raw.get("max_steps_total") is not None else Budget.trials
    values: dict[str, Any] = {
        name: checked(raw.get(name), COUNT, f"budget.{name}", fail)
        for name in ("max_steps", "max_steps_total")
    }
    values["trials"] = checked(raw.get("trials", default_trials), COUNT, "budget.trials", fail)
    values["timeout"] = parse_duration(raw.get("timeout"), fail)
    total, per_trial = values["max_steps_total"], values["max_steps"]
    if total is not None and per_trial is not None and total < per_trial:
        raise fail(
            "budget.max_steps_total",
            f"{total} is less than one trial's max_steps ({per_trial}); it counts the steps "
            "of all trials together",
        )
    if total is not None and driver == "ray":
        raise fail(
            "budget.max_steps_total",
            "the ray driver runs its own trial loop and cannot stop on a step budget; "
            "use trials, or --driver optuna",
        )
    ends = ("trials", "timeout", "max_steps_total")
    if all(values[name] is None for name in ends) and options.get("sampler") != "grid":
        raise fail("budget", "set trials, timeout or max_steps_total so the study ends")
    return Budget(**values)
