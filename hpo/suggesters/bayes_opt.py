"""Bayesian optimization: bayes_opt's Gaussian process suggests, complete trials register.

Run alike by --driver bo (hpo.drivers.bo_driver) and --driver ray's searcher bayesopt, which
ask this same code: one space, seed and objective try the same configurations on both.

Coordinates the Gaussian process sees: a log param as log10 of its value; a stepped float and
an int as the index of its value (bayes_opt's int parameter); a categorical as bayes_opt's
categorical parameter over the choices' indices. A conditional param is always in the
Gaussian process's space; a trial gets it only when its condition holds.

bayes_opt maximizes: a minimized objective is negated in one place, _target(). The first
init_points trials are random (seeded by seed and trial number). With several trials at once
the ConstantLiar acquisition hands out as many suggestions (bayes_opt_liar.py: fixed for int
and categorical params). A failed, pruned or NaN trial is
never registered. state() holds every registered observation (what a resumed study restores).
The acquisition's random state is seeded from the seed and the number of trials already in the
study (history_seed), so a resumed run does not retrace the earlier one.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from hpo.space import Categorical, SearchSpace, SpaceError
from hpo.space.driver_options import SEED, Option
from hpo.suggesters.seeds import history_seed
from runner.outcome import CONTINUE, Decision

BAYES_OPT_OPTIONS: dict[str, Option] = {
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


def check_bayes_opt_space(
    space: SearchSpace, fail: Callable[[str, str], SpaceError], where: str = "the bo driver"
) -> None:
    """bayes_opt optimizes one objective over at least one searched param."""
    if len(space.objectives) > 1:
        raise fail("objective", f"{where} optimizes one objective; use optuna (nsga2)")
    if not any(_is_searched(p.distribution) for p in space.searched):
        raise fail("params", f"{where} needs at least one param with more than one value")


def bayes_opt_settings(options: Mapping[str, Any], parallel: int) -> dict[str, Any]:
    """What summary.json's `method` says of it: the options that shape its suggestions."""
    exploration = "kappa" if options["acquisition"] == "ucb" else "xi"
    settings = {name: options[name] for name in ("seed", "acquisition", exploration, "init_points")}
    if parallel > 1:
        settings["liar"] = options["liar"]
    return settings


class BayesOpt:
    """bayes_opt's suggest/register loop, asked by trial number (an Algorithm)."""

    def __init__(
        self,
        space: SearchSpace,
        parallel: int,
        history: int = 0,
        enqueue: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        """history: trials already in the study (a resumed study's generator is mixed with it)."""
        from bayes_opt import BayesianOptimization, acquisition

        self.space, self.options, self.enqueue = space, space.driver_options, enqueue
        self.params = [p for p in space.searched if _is_searched(p.distribution)]
        acq = {
            "ucb": lambda: acquisition.UpperConfidenceBound(kappa=self.options["kappa"]),
            "ei": lambda: acquisition.ExpectedImprovement(xi=self.options["xi"]),
            "pi": lambda: acquisition.ProbabilityOfImprovement(xi=self.options["xi"]),
        }[self.options["acquisition"]]()
        if parallel > 1:
            from hpo.suggesters.bayes_opt_liar import TypedConstantLiar

            acq = TypedConstantLiar(acq, strategy=self.options["liar"])
        with warnings.catch_warnings():  # "non-float parameters are experimental"
            warnings.simplefilter("ignore")
            self.optimizer = BayesianOptimization(
                f=None,
                pbounds=self._bounds(),
                acquisition_function=acq,
                random_state=history_seed(self.options["seed"], history),
                verbose=0,
            )
        self.observations: list[dict[str, Any]] = []
        self.pending: dict[int, dict[str, Any]] = {}

    def restore(
        self, saved: Mapping[str, Any], complete: Iterable[tuple[int, Mapping[str, Any], float]]
    ) -> None:
        """Register what state() saved, then the complete (number, params, value) it lacks
        (a trial that ended after the state was last saved)."""
        registered = set()
        for observation in saved.get("observations", []):
            self._register(observation["number"], observation["point"], observation["value"])
            registered.add(observation["number"])
        for number, params, value in complete:
            if number not in registered:
                self._register(number, self._to_point(params), value)

    def state(self) -> dict[str, Any]:
        return {"observations": self.observations}

    def resume(self, number: int, params: Mapping[str, Any]) -> None:
        self.pending[number] = self._to_point(params)

    def ask(self, number: int) -> dict[str, Any]:
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
        return self.space.trial_params(values)

    def report(self, number: int, step: int, value: float) -> Decision:
        return CONTINUE  # bayes_opt does not prune

    def tell(self, number: int, state: str, values: Sequence[float] | None) -> None:
        point = self.pending.pop(number, None)
        if point is not None and state == "complete" and values:
            self._register(number, point, values[0])

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
        import numpy as np

        seed = self.options["seed"]
        rng = np.random.RandomState([seed, number] if seed is not None else None)
        space = self.optimizer.space
        return self._plain(space.array_to_params(space.random_sample(random_state=rng)))

    @staticmethod
    def _plain(point: Mapping[str, Any]) -> dict[str, Any]:
        # JSON-friendly: floats for continuous coordinates, ints for indices.
        import numpy as np

        return {
            k: float(v) if isinstance(v, float | np.floating) else int(v) for k, v in point.items()
        }

    def _to_values(self, point: Mapping[str, Any]) -> dict[str, Any]:
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

    def _to_point(self, values: Mapping[str, Any]) -> dict[str, Any]:
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
