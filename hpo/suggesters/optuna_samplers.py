"""The Optuna sampler a space's `driver:` options name, set up for one process or many workers."""

from __future__ import annotations

import functools
import os
import socket
import warnings
import zlib
from typing import Any

from hpo.space import Categorical, Fixed, Float, SearchSpace
from hpo.suggesters.grid import grid_values
from hpo.suggesters.optuna_pruners import pruner_name
from hpo.suggesters.seeds import history_seed
from runner.errors import UserInputError

SAMPLERS = ("auto", "tpe", "gp", "cmaes", "qmc", "random", "grid", "nsga2")
STARTUP_TRIALS = 10  # Optuna's own default
PRUNED_TPE_STARTUP_TRIALS = 5  # TPE under the auto pruner: see startup_trials


def sampler_name(space: SearchSpace) -> str:
    """The sampler's name, auto resolved: tpe for one objective, nsga2 for several.

    --driver ray's searcher grid is this grid sampler, so that it walks the grid in the order
    --driver optuna's sampler grid does (Optuna's, seeded).
    """
    if space.driver_options.get("searcher") == "grid":
        return "grid"
    name = space.driver_options["sampler"]
    return ("tpe" if len(space.objectives) == 1 else "nsga2") if name == "auto" else name


def startup_trials(space: SearchSpace) -> int:
    """The sampler's random start-up trials, auto resolved (issue 19, bench/lcbench.py).

    Optuna's 10, except for TPE under the auto pruner: 5. There pruned trials are cheap (the
    step budget buys about 50 trials for random search's 30, half of them stopped at the first
    rung) and the model is better started sooner: on 10 LCBench tasks x 20 seeds, in three
    draws, TPE + the auto pruner with 5 start-up trials matched full-budget random search's
    best with 0.29x its epochs on the median task (0.30-0.31x with 10) and was behind unpruned
    TPE at the full budget on 1 task of 10 (2-3 with 10). Without pruning, 5 is worse:
    unpruned TPE with 5 was behind unpruned TPE with 10 at the full budget on 6 tasks of 10,
    so every other case keeps Optuna's default (BENCHMARKS.md, "Third round").
    """
    chosen = space.driver_options["n_startup_trials"]
    if chosen != "auto":
        return chosen
    pruned_by_auto = space.driver_options["pruner"] == "auto" and pruner_name(space) != "none"
    if sampler_name(space) == "tpe" and pruned_by_auto:
        return PRUNED_TPE_STARTUP_TRIALS
    return STARTUP_TRIALS


def sampler_settings(space: SearchSpace, parallel: int = 1, shared: bool = False) -> dict[str, Any]:
    """The keyword arguments the sampler of a new study is built with (seed: the space's; a
    resumed study or a worker mixes it, see sampler_seed): what summary.json's `method` and
    the search's first line say, read from here so that they cannot differ from it."""
    options, name = space.driver_options, sampler_name(space)
    settings: dict[str, Any] = {"seed": options["seed"]}
    if name in ("tpe", "gp", "cmaes"):
        settings["n_startup_trials"] = startup_trials(space)
    if name == "tpe":
        # group: conditional params form their own groups, so multivariate TPE handles them;
        # only then, since grouping rescans every past trial on each ask (~12% per trial at 1000)
        # constant_liar: parallel trials see pending ones as bad and spread out.
        settings["multivariate"] = True
        settings["group"] = any(p.condition for p in space.params)
        settings["constant_liar"] = parallel > 1 or shared
    if name == "qmc":
        settings["scramble"] = True
    return settings


def make_sampler(space: SearchSpace, parallel: int, shared: bool = False, history: int = 0) -> Any:
    """The space's sampler; shared: other processes (workers) ask the same study on a database;
    history: trials already in the study's storage (a resumed study)."""
    import optuna

    with warnings.catch_warnings():  # TPE's group, GP: "experimental feature"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _build_sampler(optuna.samplers, space, parallel, shared, history)


def sampler_seed(space: SearchSpace, shared: bool, history: int) -> int | None:
    """The seed of this process's sampler.

    A new study on one machine: the space's seed; a resumed one: base.history_seed (the seed
    mixed with the number of trials already stored). Workers on a database: mixed with
    host and pid, so they do not all propose the same params. qmc keeps the seed: its sequence
    is indexed by trial number and must be the same in every process.
    """
    seed = space.driver_options["seed"]
    if seed is None or sampler_name(space) == "qmc":
        return seed
    if shared:
        return zlib.crc32(f"{seed} {socket.gethostname()} {os.getpid()}".encode())
    return history_seed(seed, history)


def _build_sampler(
    samplers: Any, space: SearchSpace, parallel: int, shared: bool, history: int
) -> Any:
    name = sampler_name(space)
    settings = {
        **sampler_settings(space, parallel, shared),
        "seed": sampler_seed(space, shared, history),
    }
    if name == "tpe":
        return samplers.TPESampler(**settings)
    if name == "gp":
        return samplers.GPSampler(**settings)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401 (Optuna imports it only when it first samples)
        except ImportError:
            raise UserInputError(
                "sampler cmaes needs the cmaes package: pip install cmaes"
            ) from None
        return samplers.CmaEsSampler(**settings)
    if name == "qmc":
        return samplers.QMCSampler(**settings, warn_asynchronous_seeding=False)
    if name == "random":
        return samplers.RandomSampler(**settings)
    if name == "grid":  # check_space counted it: at most MAX_GRID_POINTS points
        grid = {p.name: grid_values(p.distribution) for p in space.searched}
        return _ask_tell_grid_sampler()(grid, **settings)
    return samplers.NSGAIISampler(**settings)


@functools.cache
def _ask_tell_grid_sampler() -> type:
    """GridSampler without its study.stop(), which works only inside study.optimize: ask()
    checks is_exhausted instead. A module attribute (see __getattr__) so that it pickles, as
    Ray's searcher is pickled with its Optuna study; made on first use: optuna loads then."""
    from optuna.samplers import GridSampler

    class AskTellGridSampler(GridSampler):
        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            pass

    AskTellGridSampler.__module__ = __name__
    AskTellGridSampler.__qualname__ = "AskTellGridSampler"
    return AskTellGridSampler


def __getattr__(name: str) -> Any:
    if name == "AskTellGridSampler":
        return _ask_tell_grid_sampler()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def suggest_params(trial: Any, space: SearchSpace) -> dict[str, Any]:
    """The searched params that are active, asked of an Optuna trial in the space's order.

    The optuna driver's suggester and the Ray driver's optuna searcher both ask through it: the same calls in the
    same order are what make a seeded sampler propose the same params on both drivers.
    """
    sampled: dict[str, Any] = {}
    for param in space.params:  # parents first: conditions see their parent's value
        if not isinstance(param.distribution, Fixed) and param.is_active(sampled):
            sampled[param.name] = _suggest(trial, param.name, param.distribution)
    return sampled


def _suggest(trial: Any, name: str, distribution: Any) -> Any:
    if isinstance(distribution, Categorical):
        return trial.suggest_categorical(name, list(distribution.choices))
    suggest = trial.suggest_float if isinstance(distribution, Float) else trial.suggest_int
    return suggest(
        name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
    )
