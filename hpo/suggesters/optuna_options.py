"""The options of Optuna's sampler and pruner, and what they cannot search.

Both drivers that run them read these: --driver optuna (hpo.drivers.optuna_driver adds its
storage options) and --driver ray's searcher optuna and scheduler auto, which take them from a
space's `optuna:` section too, so one space file searches the same way on both.
"""

from __future__ import annotations

from collections.abc import Callable

from hpo.space import SearchSpace, SpaceError
from hpo.space.driver_options import SEED, Option
from hpo.suggesters.grid import check_grid
from hpo.suggesters.optuna_pruners import AUTO_PRUNER, PRUNERS
from hpo.suggesters.optuna_samplers import (
    PRUNED_TPE_STARTUP_TRIALS,
    SAMPLERS,
    STARTUP_TRIALS,
)

OPTUNA_OPTIONS: dict[str, Option] = {
    "seed": SEED,
    "sampler": Option("auto", "auto: tpe for one objective, nsga2 for several", choices=SAMPLERS),
    "pruner": Option(
        "auto",
        f"auto: {AUTO_PRUNER} for one objective, none for several or under gp",
        choices=PRUNERS,
    ),
    "n_startup_trials": Option(
        "auto",
        "tpe, gp, cmaes: random trials before the model; auto: "
        f"{PRUNED_TPE_STARTUP_TRIALS} for tpe under the auto pruner, else {STARTUP_TRIALS}",
        kind=int,
        low=0,
        also=("auto",),
    ),
    "pruner_startup_trials": Option(
        5, "median, percentile: trials before any pruning", kind=int, low=0
    ),
    "n_warmup_steps": Option(
        0, "median, percentile: steps before a trial can be pruned", kind=int, low=0
    ),
    "percentile": Option(
        25.0, "percentile: prune below this percentile of the others", kind=float, low=0, high=100
    ),
    "reduction_factor": Option(
        3, "successive_halving, hyperband: 1/N trials go on", kind=int, low=2
    ),
}


def check_optuna_space(space: SearchSpace, fail: Callable[[str, str], SpaceError]) -> None:
    """Grid needs finite choices; several objectives cannot be pruned or searched by CMA-ES."""
    options = space.driver_options
    if len(space.objectives) > 1:
        if options["pruner"] not in ("auto", "none"):
            raise fail("driver.pruner", "Optuna cannot prune with several objectives; use none")
        if options["sampler"] == "cmaes":
            raise fail("driver.sampler", "cmaes optimizes one objective; use nsga2 or tpe")
    if options["sampler"] == "grid":  # counted, not listed: a 1e9-value range is one line
        check_grid(space, fail, "the grid sampler needs a step (no log scale)")
