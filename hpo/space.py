"""Search spaces: what a study searches, for which objective, within which budget.

A space file (experiments/spaces/*.yaml) names parameters by dotted config key:

    experiment: experiments/lm_tiny.yaml
    objective: {metric: val_loss, direction: minimize}
    budget: {trials: 16, timeout: null, max_steps: 200}
    driver: {seed: 0, optuna: {sampler: tpe, pruner: median}}
    params:
      train.learning_rate: {type: float, low: 1e-5, high: 1e-2, log: true}
      train.optim: {type: categorical, choices: [adamw, sgd]}
      train.sgd_momentum: {type: float, low: 0.5, high: 0.99, when: {train.optim: sgd}}
      train.max_grad_norm: 1.0

Example:
    >>> space = load_space("experiments/spaces/lr_wd.yaml", driver="random")
    >>> [p.name for p in space.searched]
    ['train.learning_rate', 'train.weight_decay']
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from runner.errors import UserInputError


class SpaceError(UserInputError):
    """A space file (or an --enqueue file) is invalid; the message names the file and the key."""


@dataclass(frozen=True)
class Float:
    """A real number in [low, high]; log: searched on a log scale; step: only low + k * step."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def contains(self, value: Any) -> bool:
        if not _is_number(value) or not self.low <= value <= self.high:
            return False
        return self.step is None or _is_multiple(value - self.low, self.step)

    @property
    def n_values(self) -> int | None:
        """How many values a stepped range holds (None: continuous)."""
        return None if self.step is None else round((self.high - self.low) / self.step) + 1

    def value_at(self, index: int) -> float:
        # Rounding removes float noise such as 0.30000000000000004 from low + k * step.
        return float(f"{min(self.low + index * self.step, self.high):.12g}")

    def sample_bounds(self) -> tuple[float, float]:
        """Bounds of the coordinate a sampler draws uniformly: log10 of the value when log."""
        return (math.log10(self.low), math.log10(self.high)) if self.log else (self.low, self.high)

    def from_sample(self, x: float) -> float:
        value = 10.0**x if self.log else x
        value = min(max(value, self.low), self.high)
        if self.step is not None:
            value = self.value_at(round((value - self.low) / self.step))
        return value

    def to_sample(self, value: float) -> float:
        return math.log10(value) if self.log else value


@dataclass(frozen=True)
class Int:
    """An integer in [low, high]; log: searched on a log scale; step: only low + k * step."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    @property
    def n_values(self) -> int | None:
        """How many values the range holds (None: log scale, searched as continuous)."""
        return None if self.log else (self.high - self.low) // self.step + 1

    def value_at(self, index: int) -> int:
        return min(self.low + index * self.step, self.high)

    def sample_bounds(self) -> tuple[float, float]:
        # Half a unit beyond each end gives the end values their fair share after rounding.
        if self.log:
            return math.log10(self.low - 0.5), math.log10(self.high + 0.5)
        return self.low - 0.5, self.high + 0.5

    def from_sample(self, x: float) -> int:
        value = 10.0**x if self.log else x
        value = min(max(round(value), self.low), self.high)
        return self.value_at(round((value - self.low) / self.step))

    def to_sample(self, value: int) -> float:
        return math.log10(value) if self.log else float(value)


@dataclass(frozen=True)
class Categorical:
    """One of a list of scalar choices (str, int, float, bool or null)."""

    choices: tuple[Any, ...]

    def contains(self, value: Any) -> bool:
        return any(value == c and type(value) is type(c) for c in self.choices)


@dataclass(frozen=True)
class Fixed:
    """A value set in every trial, never searched."""

    value: Any

    def contains(self, value: Any) -> bool:
        return value == self.value


Distribution = Float | Int | Categorical | Fixed


@dataclass(frozen=True)
class Param:
    """One dotted config key and how it is searched; condition: {other param: allowed values}."""

    name: str
    distribution: Distribution
    condition: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def is_active(self, assignment: Mapping[str, Any]) -> bool:
        """Whether the param is used, given the values of the params it depends on."""
        return all(
            other in assignment and assignment[other] in values for other, values in self.condition
        )


@dataclass(frozen=True)
class Objective:
    """The metric a study optimizes and in which direction."""

    metric: str
    direction: Literal["minimize", "maximize"]

    def is_better(self, value: float, than: float) -> bool:
        return value < than if self.direction == "minimize" else value > than


@dataclass(frozen=True)
class Budget:
    """When a study stops: trials (complete + pruned), timeout (seconds); max_steps per trial."""

    trials: int | None = 16
    timeout: float | None = None
    max_steps: int | None = None


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space, bound to the driver whose options it holds."""

    params: tuple[Param, ...]  # parents before the params conditioned on them
    objectives: tuple[Objective, ...]
    budget: Budget = Budget()
    driver: str = "optuna"
    driver_options: Mapping[str, Any] = field(default_factory=dict)
    experiment: str | None = None
    source: str = "<space>"

    @property
    def name(self) -> str:
        """Default study name: the space file's stem."""
        return Path(self.source).stem if self.source != "<space>" else "study"

    @property
    def objective(self) -> Objective:
        """The first (or only) objective: pruning and the best trial follow it."""
        return self.objectives[0]

    @property
    def searched(self) -> tuple[Param, ...]:
        """Params a driver samples (every param but the fixed ones)."""
        return tuple(p for p in self.params if not isinstance(p.distribution, Fixed))

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def trial_params(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """The params a trial runs with: fixed values plus sampled values of active params."""
        chosen: dict[str, Any] = {}
        for p in self.params:
            if not p.is_active(chosen):
                continue
            if isinstance(p.distribution, Fixed):
                chosen[p.name] = p.distribution.value
            elif p.name in sampled:
                chosen[p.name] = sampled[p.name]
        return chosen

    def sample_bounds(self) -> dict[str, tuple[float, float]]:
        """Per numeric searched param, the bounds of its sampling coordinate (log10 when log)."""
        return {
            p.name: p.distribution.sample_bounds()
            for p in self.searched
            if isinstance(p.distribution, Float | Int)
        }

    def with_budget(
        self,
        trials: int | None = None,
        timeout: float | str | None = None,
        max_steps: int | None = None,
    ) -> SearchSpace:
        """A copy with the given budget fields replaced (None keeps the space's value)."""
        if isinstance(timeout, str):  # --timeout 90, 45s, 30m, 2h

            def fail(key: str, problem: str) -> SpaceError:
                return SpaceError(f"--timeout: {problem}")

            timeout = _duration(timeout, fail)
        changes = {"trials": trials, "timeout": timeout, "max_steps": max_steps}
        for key, value in changes.items():
            if value is not None and not (_is_number(value) and value > 0):
                raise SpaceError(
                    f"--{key.replace('_', '-')}: must be a positive number, got {value}"
                )
        kept = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, budget=dataclasses.replace(self.budget, **kept))

    def with_seed(self, seed: int | None) -> SearchSpace:
        """A copy whose driver seed is `seed`."""
        return dataclasses.replace(self, driver_options={**self.driver_options, "seed": seed})

    def to_dict(self) -> dict[str, Any]:
        """The resolved space in the space-file format (for study.yaml)."""
        objectives = [dataclasses.asdict(o) for o in self.objectives]
        params: dict[str, Any] = {}
        for p in self.params:
            d = p.distribution
            fields = {
                k: v for k, v in dataclasses.asdict(d).items() if v is not None and v is not False
            }  # keeps 0
            spec = {"type": type(d).__name__.lower(), **fields}
            if isinstance(d, Categorical):
                spec["choices"] = list(d.choices)
            if p.condition:
                spec["when"] = {k: list(v) for k, v in p.condition}
            params[p.name] = spec
        return {
            "experiment": self.experiment,
            "objective": objectives[0] if len(objectives) == 1 else objectives,
            "budget": dataclasses.asdict(self.budget),
            "driver": {"name": self.driver, **self.driver_options},
            "params": params,
        }


KeyCheck = Callable[[str, str], None]


def load_space(
    path: str | Path,
    experiment: str | None = None,
    driver: str = "optuna",
    config_key_check: KeyCheck | None = None,
) -> SearchSpace:
    """Read and validate a space file before any trial; raises SpaceError naming file and key.

    Args:
        experiment: replaces the file's `experiment` (the CLI's --experiment).
        driver: whose options the file's `driver:` section is checked against.
        config_key_check: `check_key(key, source)` raising UserInputError on unknown config keys
            (runner.config.check_key for runner trials; None for plain-function objectives).
    """
    path = Path(path)
    if not path.is_file():
        raise SpaceError(f"{path}: space file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}:" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise SpaceError(f"{path}:{where} invalid YAML: {problem}") from None
    return space_from_dict(raw, str(path), experiment, driver, config_key_check)


def space_from_dict(
    raw: Any,
    source: str = "<space>",
    experiment: str | None = None,
    driver: str = "optuna",
    config_key_check: KeyCheck | None = None,
) -> SearchSpace:
    """Validate a space given as a dict (what load_space reads from YAML)."""
    from hpo.drivers import check_space, resolve_driver_options

    def fail(key: str, problem: str) -> SpaceError:
        return SpaceError(f"{source}: {key}: {problem}")

    if not isinstance(raw, dict):
        raise SpaceError(f"{source}: expected a mapping with params, objective, budget, driver")
    for key in raw:
        if key not in _TOP_KEYS:
            raise fail(key, f"unknown section{_did_you_mean(key, _TOP_KEYS)}")
    if not isinstance(raw.get("params"), dict) or not raw["params"]:
        raise fail("params", "expected a mapping of at least one dotted config key to its range")
    params = _parse_params(raw["params"], fail, source, config_key_check)
    objectives = _parse_objectives(raw.get("objective", "val_loss"), fail)
    options = resolve_driver_options(driver, raw.get("driver") or {}, fail)
    budget = _parse_budget(raw.get("budget") or {}, fail, options)
    space = SearchSpace(
        params=params,
        objectives=objectives,
        budget=budget,
        driver=driver,
        driver_options=options,
        experiment=experiment or raw.get("experiment"),
        source=source,
    )
    check_space(space, fail)
    return space


def load_enqueue(path: str | Path, space: SearchSpace) -> tuple[dict[str, Any], ...]:
    """Read an --enqueue file: a YAML list of {param: value} run first, each checked against space."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) if path.is_file() else None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise SpaceError(f"{path}: line {mark.line + 1 if mark else '?'}: invalid YAML") from None
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise SpaceError(f"{path}: expected a YAML list of {{param: value}} mappings")
    searched = {p.name: p.distribution for p in space.searched}
    for i, item in enumerate(raw):
        for key, value in item.items():
            if key not in searched:
                raise SpaceError(
                    f"{path}: item {i}: '{key}' is not a searched param of {space.source}"
                )
            if isinstance(value, str) and isinstance(searched[key], Float | Int):
                value = item[key] = _number_or_none(value)
            if isinstance(searched[key], Float) and isinstance(value, int) and value is not True:
                value = item[key] = float(value)
            if not searched[key].contains(value):
                raise SpaceError(f"{path}: item {i}: {key}: {value!r} is outside the space")
    return tuple(raw)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_multiple(span: float, step: float) -> bool:
    ratio = span / step
    return abs(ratio - round(ratio)) <= 1e-9 * max(1.0, abs(ratio))


def _number_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# ----------------------------------------------------------------------------- parsing

_TOP_KEYS = ("experiment", "objective", "budget", "driver", "params", "description")
_SPEC_KEYS = {
    "float": ("type", "low", "high", "log", "step", "when"),
    "int": ("type", "low", "high", "log", "step", "when"),
    "categorical": ("type", "choices", "when"),
    "fixed": ("type", "value", "when"),
}
Fail = Callable[[str, str], SpaceError]


def _parse_params(raw: dict, fail: Fail, source: str, check: KeyCheck | None) -> tuple[Param, ...]:
    parsed: dict[str, tuple[Distribution, dict]] = {}
    for name, spec in raw.items():
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
                    key, f"condition on unknown param '{other}'{_did_you_mean(other, parsed)}"
                )
            parent = parsed[other][0]
            if not isinstance(parent, Categorical):
                raise fail(key, f"condition on '{other}', which is not categorical")
            values = tuple(allowed) if isinstance(allowed, list) else (allowed,)
            for value in values:
                if not parent.contains(value):
                    choices = ", ".join(map(str, parent.choices))
                    raise fail(key, f"{value!r} is not a choice of '{other}' ({choices})")
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
    if kind not in _SPEC_KEYS:
        raise fail(f"{key}.type", f"expected float, int, categorical or fixed, got {kind!r}")
    for name in spec:
        if name not in _SPEC_KEYS[kind]:
            raise fail(
                f"{key}.{name}", f"unknown field for {kind}{_did_you_mean(name, _SPEC_KEYS[kind])}"
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
        if len({(type(c), c) for c in choices}) != len(choices):
            raise fail(f"{key}.choices", "choices must be unique")
        return Categorical(tuple(choices)), when
    low, high = (
        _number(spec.get("low"), f"{key}.low", fail),
        _number(spec.get("high"), f"{key}.high", fail),
    )
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise fail(f"{key}.log", f"expected true or false, got {log!r}")
    if low >= high:
        raise fail(key, f"low ({low:g}) must be below high ({high:g})")
    if log and low <= 0:
        raise fail(key, f"a log scale needs low > 0, got {low:g}")
    step = None if spec.get("step") is None else _number(spec["step"], f"{key}.step", fail)
    if step is not None:
        if step <= 0:
            raise fail(f"{key}.step", f"must be > 0, got {step:g}")
        if log:
            raise fail(f"{key}.step", "step and log cannot be combined")
        if not _is_multiple(high - low, step):
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
        lower_is_better = any(word in metric for word in ("loss", "perplexity", "error"))
        direction = spec.get("direction") or ("minimize" if lower_is_better else "maximize")
        if direction not in ("minimize", "maximize"):
            raise fail("objective.direction", f"expected minimize or maximize, got {direction!r}")
        objectives.append(Objective(metric, direction))
    if len({o.metric for o in objectives}) != len(objectives):
        raise fail("objective", "each metric may appear once")
    return tuple(objectives)


def _parse_budget(raw: Any, fail: Fail, options: Mapping[str, Any]) -> Budget:
    if not isinstance(raw, dict):
        raise fail("budget", "expected {trials: N, timeout: SECONDS, max_steps: N}")
    for name in raw:
        if name not in ("trials", "timeout", "max_steps"):
            raise fail(
                f"budget.{name}",
                f"unknown field{_did_you_mean(name, ('trials', 'timeout', 'max_steps'))}",
            )
    values: dict[str, Any] = {"trials": raw.get("trials", Budget.trials)}
    values["timeout"] = _duration(raw.get("timeout"), fail)
    values["max_steps"] = raw.get("max_steps")
    for name in ("trials", "max_steps"):
        value = values[name]
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value <= 0
        ):
            raise fail(f"budget.{name}", f"expected a positive whole number or null, got {value!r}")
    if values["trials"] is None and values["timeout"] is None and options.get("sampler") != "grid":
        raise fail("budget", "set trials or timeout (or both) so the study ends")
    return Budget(**values)


def _duration(value: Any, fail: Fail) -> float | None:
    """Seconds from a number or text such as 90, '45s', '30m', '2h'."""
    if value is None:
        return None
    scale = 1.0
    if isinstance(value, str) and value[-1:] in ("s", "m", "h"):
        value, scale = value[:-1], {"s": 1.0, "m": 60.0, "h": 3600.0}[value[-1]]
    seconds = _number(value, "budget.timeout", fail) * scale
    if seconds <= 0:
        raise fail("budget.timeout", f"must be > 0, got {seconds:g}")
    return seconds


def _number(value: Any, key: str, fail: Fail) -> float:
    # YAML 1.1 reads `1e-5` (no dot) as a string: numeric text is accepted as a number.
    number = _number_or_none(value) if isinstance(value, str) else value
    if not isinstance(number, int | float) or isinstance(number, bool):
        raise fail(key, f"expected a number, got {value!r}")
    if not math.isfinite(number):
        raise fail(key, f"must be a finite number, got {value!r}")
    return number


def _did_you_mean(name: Any, valid: Any) -> str:
    import difflib

    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
