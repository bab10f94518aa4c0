"""A validated search space: its params, objectives and budget, bound to one driver.

A SearchSpace comes from hpo.space.load_space (a space file) or space_from_dict; it is frozen,
and with_budget / with_seed return changed copies (the CLI's --trials, --timeout, --seed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hpo.space.distributions import Categorical, Distribution, Fixed, Float, Int
from hpo.space.errors import SpaceError
from hpo.space.numeric import COUNT, SECONDS, parse_duration
from runner.schema import SEED, checked


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
    """When a study stops: trials (complete + pruned), timeout (seconds), max_steps_total (steps
    of all its trials together, so trials that pruning stops early buy more trials); max_steps
    per trial."""

    trials: int | None = 16
    timeout: float | None = None
    max_steps: int | None = None
    max_steps_total: int | None = None


DEFAULT_KILL_AFTER = 10.0  # seconds a command trial has between SIGTERM (or SIGINT) and SIGKILL


@dataclass(frozen=True)
class Command:
    """What a command trial runs: a command line with {placeholders} (hpo.command_template).

    kill_after: seconds a stopped trial's process group has between the first signal (SIGTERM
    when pruned, SIGINT when the search is interrupted) and SIGKILL. source: where it was
    written (the space file, or --command), for error messages.
    """

    template: str
    kill_after: float = DEFAULT_KILL_AFTER
    source: str = "--command"


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
    command: Command | None = None  # command trials: the space file's command:, or --command

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
        max_steps_total: int | None = None,
    ) -> SearchSpace:
        """A copy with the given budget fields replaced (None keeps the space's value).

        A step budget given without trials replaces the trial count: the study starts trials
        until their steps reach it (--max-steps-total alone on a space that sets trials: 16).
        """
        changes = {
            name: checked(value, COUNT, f"--{name.replace('_', '-')}", _flag)
            for name, value in (
                ("trials", trials),
                ("max_steps", max_steps),
                ("max_steps_total", max_steps_total),
            )
        }
        changes["timeout"] = parse_duration(
            timeout, lambda key, problem: _flag("--timeout", problem)
        )
        kept: dict[str, Any] = {k: v for k, v in changes.items() if v is not None}
        if max_steps_total is not None and trials is None:
            kept["trials"] = None
        budget = dataclasses.replace(self.budget, **kept)
        if max_steps_total is not None and self.driver == "ray":
            raise SpaceError(
                "--max-steps-total: the ray driver runs its own trial loop and cannot stop on a "
                "step budget; use --trials, or --driver optuna"
            )
        if budget.max_steps_total is not None and budget.max_steps is not None:
            if budget.max_steps_total < budget.max_steps:
                raise SpaceError(
                    f"--max-steps-total {budget.max_steps_total}: less than one trial's "
                    f"{budget.max_steps} steps (--max-steps, budget.max_steps)"
                )
        return dataclasses.replace(self, budget=budget)

    def with_seed(self, seed: int | None) -> SearchSpace:
        """A copy whose driver seed is `seed` (None, or a whole number in [0, 2**32))."""
        if seed is not None:
            seed = checked(seed, SEED, "--seed", _flag)
        return dataclasses.replace(self, driver_options={**self.driver_options, "seed": seed})

    def with_command(
        self, template: str | None, kill_after: float | None = None, source: str = "--command"
    ) -> SearchSpace:
        """A copy that runs `template` as each trial (None keeps the space's own command), with
        its kill_after replaced when given. Placeholders are checked by hpo.validation."""
        command = self.command
        if template is not None:
            command = Command(template, DEFAULT_KILL_AFTER, source)
        if kill_after is not None:
            if command is None:
                raise SpaceError("--kill-after: only command trials are stopped by signals")
            kill_after = checked(kill_after, SECONDS, "--kill-after", _flag)
            command = dataclasses.replace(command, kill_after=kill_after)
        return dataclasses.replace(self, command=command)

    def to_dict(self) -> dict[str, Any]:
        """The resolved space in the space-file format (for study.yaml)."""
        objectives = [dataclasses.asdict(o) for o in self.objectives]
        params: dict[str, Any] = {}
        for p in self.params:
            d = p.distribution
            # log: false and step: null are left out (their defaults; 0 is kept), but a fixed
            # value is the param itself: `value: false` was left out too and read back as null
            fields = {
                k: v
                for k, v in dataclasses.asdict(d).items()
                if v is not None and (v is not False or isinstance(d, Fixed))
            }
            spec = {"type": type(d).__name__.lower(), **fields}
            if isinstance(d, Categorical):
                spec["choices"] = list(d.choices)
            if p.condition:
                spec["when"] = {k: list(v) for k, v in p.condition}
            params[p.name] = spec
        command = {}
        if self.command is not None:  # only then: study.yaml of a runner study is unchanged
            command = {
                "command": {"run": self.command.template, "kill_after": self.command.kill_after}
            }
        return {
            **command,
            "experiment": self.experiment,
            "objective": objectives[0] if len(objectives) == 1 else objectives,
            "budget": dataclasses.asdict(self.budget),
            "driver": {"name": self.driver, **self.driver_options},
            "params": params,
        }


def _flag(key: str, problem: str) -> SpaceError:
    """The error of a flag (or the API's argument of its name): "--trials: problem"."""
    return SpaceError(f"{key}: {problem}")
