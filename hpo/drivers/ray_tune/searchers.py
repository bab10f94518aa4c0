"""The study's ray.tune Searcher: one wrapper around every search algorithm.

Searchers: random draws Ray domains (tune.uniform, loguniform, quniform, randint, lograndint,
qrandint, choice) with a generator seeded by (seed, trial number), so a seeded run repeats, in
parallel too; grid runs every distinct point once; optuna (the default) is the optuna driver's
own sampler and pruner (optuna_search.py: the same params as --driver optuna); bayesopt is a small Searcher over bayes_opt 3 (Ray's BayesOptSearch calls
bayes_opt.UtilityFunction, removed in bayes_opt 2). Conditions: optuna and grid never draw an
inactive param; random and bayesopt draw every param and drop the inactive ones before the
objective runs. The wrapper reserves trial numbers and keeps the budget: it stops suggesting
once complete + pruned trials (earlier runs included; failed ones do not count) reach
budget.trials.
"""

from __future__ import annotations

import math
import numbers
import pickle
from collections.abc import Mapping
from typing import Any

from hpo.drivers.base import StudySpec, history_seed
from hpo.drivers.ray_tune.domains import ray_domain, untried_grid
from hpo.drivers.ray_tune.events import StudyEvents, live_events
from hpo.drivers.ray_tune.optuna_search import PRUNE_FILE, OptunaTrials
from hpo.drivers.ray_tune.trial_numbers import reserve_number
from hpo.space import Categorical, SearchSpace
from hpo.study import load_trials, trial_dir
from runner.files import atomic_write_text
from runner.outcome import CONTINUE


def study_searcher(space: SearchSpace, study: StudySpec, events: StudyEvents) -> Any:
    """The study's ray.tune Searcher (a class made here: ray is imported only when it runs)."""
    import numpy as np
    from ray.tune.search import Searcher

    # The class is pickled with the experiment: it may refer to plain data and module functions,
    # never to `events` (the tracker behind it may not pickle, and must be the live one).
    options, metric = space.driver_options, space.objective.metric
    mode = "min" if space.objective.direction == "minimize" else "max"
    seed, budget, study_dir, key = (
        options["seed"],
        space.budget.trials,
        study.dir.resolve(),
        events.key,
    )
    parallel = study.parallel
    so_far = len(load_trials(study.dir))
    fresh = not so_far  # enqueued params go first in a new study only
    # a later experiment of the study (resumed, or after failures): not the same draws again
    model_seed = history_seed(seed, so_far)
    enqueue = [dict(p) for p in study.enqueue] if fresh else []
    grid = untried_grid(space, study.dir) if options["searcher"] == "grid" else []

    class StudySearcher(Searcher):
        """Reserves a trial number per suggestion, keeps the budget, asks `pick` for params."""

        def __init__(self, inner: Any = None) -> None:
            super().__init__(metric=metric, mode=mode)
            self.inner = inner  # OptunaTrials, or None: random, grid and bayesopt pick themselves
            self.live: dict[str, int] = {}  # Ray trial id -> trial number
            self.suggested = 0
            self.enqueue, self.grid = list(enqueue), list(grid)
            self.gp = (
                _bayes_optimizer(space, parallel, model_seed)
                if options["searcher"] == "bayesopt"
                else None
            )
            self.coords: dict[str, dict[str, float]] = {}

        def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
            return True  # metric, mode and space were set at construction

        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
            study_events = live_events(key)  # None where Tune runs remotely (Ray Client)
            if (
                options["searcher"] == "grid"
                and not self.grid
                or self.inner is not None
                and self.inner.exhausted()
                or (
                    study_events.why_stop()
                    if study_events
                    else budget is not None and self.suggested >= budget
                )
            ):
                return Searcher.FINISHED
            if (
                study_events
                and budget is not None
                and study_events.finished + len(self.live) >= budget
            ):
                return None  # ask again when a live trial ends: it may fail
            number = reserve_number(study_dir)
            config = self.pick(trial_id, number)
            self.live[trial_id] = number
            self.suggested += 1
            return {**config, "hpo_trial": number}

        def pick(self, trial_id: str, number: int) -> dict[str, Any]:
            enqueued = self.enqueue.pop(0) if self.enqueue else {}
            if self.inner is not None:  # its Optuna study holds the enqueued params
                return self.inner.suggest(trial_id)
            if options["searcher"] == "grid":
                return self.grid.pop(0)
            rng = np.random.RandomState(None if seed is None else [seed, number])
            drawn = {
                p.name: ray_domain(p.distribution).sample(random_state=rng) for p in space.searched
            }
            if options["searcher"] == "bayesopt":
                drawn = self._bayes(trial_id, number, drawn, enqueued)
            return _plain({**drawn, **enqueued})

        def _bayes(self, trial_id: str, number: int, drawn: dict, enqueued: dict) -> dict[str, Any]:
            params = {**drawn, **enqueued}
            if number >= options["init_points"] and len(self.gp.space) and not enqueued:
                params = _from_coords(space, self.gp.suggest())
            self.coords[trial_id] = _to_coords(space, params)
            return params

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            decision = CONTINUE if self.inner is None else self.inner.report(trial_id, result)
            if decision.stop:
                prune = trial_dir(study_dir, self.live[trial_id]) / PRUNE_FILE
                if not prune.exists():  # read by the trial's should_stop(): see optuna_search
                    atomic_write_text(prune, f"{decision.reason}\n")

        def on_trial_complete(
            self, trial_id: str, result: dict | None = None, error: bool = False
        ) -> None:
            self.live.pop(trial_id, None)
            if self.inner is not None:
                self.inner.tell(trial_id, result, error)
            coords, value = self.coords.pop(trial_id, None), (result or {}).get(metric)
            if (
                coords is not None
                and not error
                and (result or {}).get("hpo_state") == "complete"
                and isinstance(value, numbers.Real)
                and math.isfinite(value)
            ):
                self.gp.register(coords, value if mode == "max" else -value)  # it maximizes

        def save(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "wb") as f:
                pickle.dump(self.__dict__, f)

        def restore(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "rb") as f:
                self.__dict__.update(pickle.load(f))
            if self.inner is not None:
                self.inner.reseed(len(load_trials(study_dir)))

    if options["searcher"] != "optuna":
        return StudySearcher()
    return StudySearcher(OptunaTrials(space, study, so_far, enqueue))


def _bayes_optimizer(space: SearchSpace, parallel: int, seed: int | None) -> Any:
    """bayes_opt 3 over the sample coordinates: log10 for log params, an index for choices."""
    from bayes_opt import BayesianOptimization, acquisition

    options = space.driver_options
    acq = {
        "ucb": acquisition.UpperConfidenceBound,
        "ei": acquisition.ExpectedImprovement,
        "pi": acquisition.ProbabilityOfImprovement,
    }[options["acquisition"]]()
    if parallel > 1:  # pending suggestions get a made-up value, so that they spread out
        acq = acquisition.ConstantLiar(acq, strategy="min")
    bounds = {
        p.name: (0.0, float(len(p.distribution.choices)))
        if isinstance(p.distribution, Categorical)
        else p.distribution.sample_bounds()
        for p in space.searched
    }
    return BayesianOptimization(
        f=None,
        pbounds=bounds,
        acquisition_function=acq,
        random_state=seed,
        verbose=0,
        allow_duplicate_points=True,
    )


def _from_coords(space: SearchSpace, coords: Mapping[str, float]) -> dict[str, Any]:
    values = {}
    for p in space.searched:
        d, x = p.distribution, float(coords[p.name])
        values[p.name] = (
            d.choices[min(int(x), len(d.choices) - 1)]
            if isinstance(d, Categorical)
            else d.from_sample(x)
        )
    return values


def _to_coords(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, float]:
    return {
        p.name: p.distribution.choices.index(values[p.name]) + 0.5
        if isinstance(p.distribution, Categorical)
        else p.distribution.to_sample(values[p.name])
        for p in space.searched
    }


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """numpy scalars from Ray's samplers as Python numbers (YAML and JSON want those)."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in params.items()}
