"""The bayesian-optimization driver: bayes_opt's Gaussian process suggests, finished trials register.

Coordinates the Gaussian process sees: a log param as log10 of its value; a stepped float and
an int as the index of its value (bayes_opt's int parameter); a categorical as bayes_opt's
categorical parameter over the choices' indices. A conditional param is always in the
Gaussian process's space; a trial gets it only when its condition holds.

bayes_opt maximizes: a minimized objective is negated in one place, _target(). The first
init_points trials are random (seeded by seed and trial number). With --parallel K the
ConstantLiar acquisition hands out K suggestions at once. A failed, pruned or NaN trial is
never registered. Resume: every registered observation is in runs/<study>/bo_observations.json
(rewritten atomically); a complete trial missing from it (killed between the two writes) is
registered from its trial.json. An interrupted trial is continued with its own params (its
point is pending again). The acquisition's random state is seeded from the seed and the
number of trials already in the study, so a resumed run does not retrace the earlier one.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from hpo.drivers.base import (
    CONTINUE,
    FINISHED_STATES,
    SEED,
    Decision,
    ObjectiveFunction,
    Option,
    StudySpec,
    Suggestion,
    Tracker,
    TrialRecord,
    history_seed,
)
from hpo.methods import method
from hpo.parallel import run_study
from hpo.space import Categorical, SearchSpace, SpaceError
from hpo.study import StudyResult, write_json

OPTIONS: dict[str, Option] = {
    "seed": SEED,
    "acquisition": Option(
        "ucb",
        "upper confidence bound, expected or probable improvement",
        choices=("ucb", "ei", "pi"),
    ),
    "kappa": Option(2.576, "ucb: weight of exploration", kind=float, low=0),
    "xi": Option(0.01, "ei, pi: the improvement sought", kind=float, low=0),
    "init_points": Option(5, "random trials before the Gaussian process suggests", kind=int, low=1),
    "liar": Option(
        "min",
        "parallel: the value pending points are given; min spreads them out",
        choices=("min", "mean", "max"),
    ),
}
OBSERVATIONS = "bo_observations.json"


def check_space(space: SearchSpace, fail: Callable[[str, str], SpaceError]) -> None:
    """bayes_opt optimizes one objective over at least one searched param."""
    if len(space.objectives) > 1:
        raise fail("objective", "the bo driver optimizes one objective; use optuna (nsga2)")
    if not any(_is_searched(p.distribution) for p in space.searched):
        raise fail("params", "the bo driver needs at least one param with more than one value")


def search_method(space: SearchSpace, study: StudySpec) -> dict[str, Any]:
    """bayes_opt's Gaussian process after init_points random trials; nothing is pruned."""
    options = space.driver_options
    exploration = "kappa" if options["acquisition"] == "ucb" else "xi"
    settings = {name: options[name] for name in ("seed", "acquisition", exploration, "init_points")}
    if study.parallel > 1:
        settings["liar"] = options["liar"]
    return method("bayes_opt", settings)


class BayesOptDriver:
    """Gaussian-process Bayesian optimization with the bayesian-optimization package."""

    name = "bo"

    def run(
        self,
        space: SearchSpace,
        study: StudySpec,
        objective: ObjectiveFunction,
        tracker: Tracker | None = None,
    ) -> StudyResult:
        return run_study(
            self.name,
            space,
            study,
            objective,
            tracker,
            lambda previous: BayesOptSuggester(space, study, previous),
        )


class BayesOptSuggester:
    """bayes_opt's suggest/register loop, one trial number per suggestion."""

    def __init__(
        self, space: SearchSpace, study: StudySpec, previous: Sequence[TrialRecord]
    ) -> None:
        import numpy as np
        from bayes_opt import BayesianOptimization, acquisition

        self.np, self.space, self.options = np, space, space.driver_options
        self.enqueue = study.enqueue
        self.path = study.dir / OBSERVATIONS
        self.params = [p for p in space.searched if _is_searched(p.distribution)]
        acq = {
            "ucb": lambda: acquisition.UpperConfidenceBound(kappa=self.options["kappa"]),
            "ei": lambda: acquisition.ExpectedImprovement(xi=self.options["xi"]),
            "pi": lambda: acquisition.ProbabilityOfImprovement(xi=self.options["xi"]),
        }[self.options["acquisition"]]()
        if study.parallel > 1:
            acq = acquisition.ConstantLiar(acq, strategy=self.options["liar"])
        with warnings.catch_warnings():  # "non-float parameters are experimental"
            warnings.simplefilter("ignore")
            self.optimizer = BayesianOptimization(
                f=None,
                pbounds=self._bounds(),
                acquisition_function=acq,
                random_state=history_seed(self.options["seed"], len(previous)),
                verbose=0,
            )
        self.observations: list[dict[str, Any]] = []
        self.pending: dict[int, dict[str, Any]] = {}
        self.next_number = max((r.number for r in previous), default=-1) + 1
        self.finished = sum(1 for r in previous if r.state in FINISHED_STATES)
        self._resume(previous)

    def _bounds(self) -> dict[str, Any]:
        from bayes_opt.parameter import CategoricalParameter, FloatParameter, IntParameter

        bounds: dict[str, Any] = {}
        for p in self.params:
            d = p.distribution
            if isinstance(d, Categorical):
                bounds[p.name] = CategoricalParameter(p.name, list(range(len(d.choices))))
            elif d.n_values is not None:
                bounds[p.name] = IntParameter(p.name, (0, d.n_values - 1))
            else:
                bounds[p.name] = FloatParameter(p.name, d.sample_bounds())
        return bounds

    def _resume(self, previous: Sequence[TrialRecord]) -> None:
        saved = json.loads(self.path.read_text())["observations"] if self.path.exists() else []
        registered = set()
        for observation in saved:
            self._register(observation["number"], observation["point"], observation["value"])
            registered.add(observation["number"])
        for record in previous:
            if record.state == "complete" and record.values and record.number not in registered:
                self._register(record.number, self._to_point(record.params), record.value)

    def finished_count(self) -> int:
        return self.finished

    def resume(self, record: TrialRecord) -> Suggestion:
        self.pending[record.number] = self._to_point(record.params)
        return Suggestion(record.number, dict(record.params))

    def ask(self) -> Suggestion:
        number = self.next_number
        self.next_number += 1
        space = self.optimizer.space
        if number < self.options["init_points"] or len(space) == 0:
            point = self._random_point(number)
        else:
            point = self._plain(self.optimizer.suggest())
            if space.params_to_array(point) in space:  # a repeat teaches nothing: explore instead
                point = self._random_point(number)
        values = self._to_values(point)
        if number < len(self.enqueue):
            values.update(self.enqueue[number])
            point = self._to_point(values)
        self.pending[number] = point
        return Suggestion(number, self.space.trial_params(values))

    def report(self, suggestion: Suggestion, step: int, value: float) -> None:
        pass  # bayes_opt does not prune

    def decide(self, suggestion: Suggestion) -> Decision:
        return CONTINUE

    def tell(self, suggestion: Suggestion, record: TrialRecord) -> None:
        point = self.pending.pop(suggestion.number)
        self.finished += record.state in FINISHED_STATES
        if record.state == "complete" and record.values:
            self._register(record.number, point, record.value)
            write_json(self.path, {"observations": self.observations})

    def _target(self, value: float) -> float:
        """bayes_opt maximizes: the one place where a minimized objective is negated."""
        return -value if self.space.objective.direction == "minimize" else value

    def _register(self, number: int, point: dict[str, Any], value: float) -> None:
        from bayes_opt.exception import NotUniqueError

        try:
            self.optimizer.register(point, self._target(value))
        except NotUniqueError:  # a repeated point (discrete spaces): its first value stands
            return
        self.observations.append({"number": number, "point": point, "value": value})

    def _random_point(self, number: int) -> dict[str, Any]:
        seed = self.options["seed"]
        rng = self.np.random.RandomState([seed, number] if seed is not None else None)
        space = self.optimizer.space
        return self._plain(space.array_to_params(space.random_sample(random_state=rng)))

    def _plain(self, point: dict[str, Any]) -> dict[str, Any]:
        # JSON-friendly: floats for continuous coordinates, ints for indices.
        return {
            k: float(v) if isinstance(v, float | self.np.floating) else int(v)
            for k, v in point.items()
        }

    def _to_values(self, point: dict[str, Any]) -> dict[str, Any]:
        values = {}
        for p in self.space.searched:
            d = p.distribution
            if p.name not in point:  # a single-choice categorical
                values[p.name] = d.choices[0]
            elif isinstance(d, Categorical):
                values[p.name] = d.choices[point[p.name]]
            elif d.n_values is not None:
                values[p.name] = d.value_at(point[p.name])
            else:
                values[p.name] = d.from_sample(point[p.name])
        return values

    def _to_point(self, values: dict[str, Any]) -> dict[str, Any]:
        point = {}
        for p in self.params:
            d, value = p.distribution, values.get(p.name)
            if isinstance(d, Categorical):
                point[p.name] = next(
                    (i for i, c in enumerate(d.choices) if d.contains(value) and c == value), 0
                )
            elif d.n_values is not None:
                point[p.name] = round((value - d.low) / d.step) if value is not None else 0
            else:  # an inactive param gets the middle of its range
                low, high = d.sample_bounds()
                point[p.name] = d.to_sample(value) if value is not None else (low + high) / 2
        return point


def _is_searched(distribution: Any) -> bool:
    return not isinstance(distribution, Categorical) or len(distribution.choices) > 1
