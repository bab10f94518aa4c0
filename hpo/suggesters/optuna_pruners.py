"""The Optuna pruner a space's `driver:` options name, and what `auto` picks.

`auto` is decided here and nowhere else (the ray driver and the study's first line read it
through pruner_name and pruner_settings). The evidence is bench/lcbench.py (BENCHMARKS.md,
"Search defaults on learning curves"): on 10 LCBench tasks x 10 seeds, where learning curves
cross, TPE with Hyperband matched full-budget random search's best with fewer epochs than with
the median pruner, which stops slow starters that would have become the best.
"""

from __future__ import annotations

from typing import Any

from hpo.space import SearchSpace

PRUNERS = ("auto", "median", "percentile", "successive_halving", "hyperband", "none")
AUTO_PRUNER = "hyperband"  # what auto picks for one objective outside gp (issue 19)


def pruner_name(space: SearchSpace) -> str:
    """The pruner's name, auto resolved: AUTO_PRUNER for one objective, none for several or gp.

    Optuna's GPSampler fits only COMPLETE trials, so a pruned trial teaches it nothing and it
    proposes the same params again: measured in bench/search_quality.py (gp-pruned), one study
    ran the same pruned configuration 22 times in a row. auto therefore prunes nothing under gp,
    and the driver warns when a space asks for both.
    """
    name = space.driver_options["pruner"]
    if name != "auto":
        return name
    one_objective = len(space.objectives) == 1
    return AUTO_PRUNER if one_objective and space.driver_options["sampler"] != "gp" else "none"


def pruner_settings(space: SearchSpace) -> dict[str, Any]:
    """The keyword arguments make_pruner builds the pruner with: what summary.json's `method`
    and the search's first line say, read from here so that they cannot differ from it."""
    options, name = space.driver_options, pruner_name(space)
    if name in ("median", "percentile"):
        settings = {
            "n_startup_trials": options["pruner_startup_trials"],
            "n_warmup_steps": options["n_warmup_steps"],
        }
        return (
            {"percentile": options["percentile"], **settings} if name == "percentile" else settings
        )
    if name == "successive_halving":
        return {"reduction_factor": options["reduction_factor"]}
    if name == "hyperband":
        return {
            "max_resource": space.budget.max_steps or "auto",
            "reduction_factor": options["reduction_factor"],
        }
    return {}


def make_pruner(space: SearchSpace) -> Any:
    """The space's Optuna pruner (NopPruner for none)."""
    import optuna.pruners as pruners

    settings = pruner_settings(space)
    return {
        "median": pruners.MedianPruner,
        "percentile": pruners.PercentilePruner,
        "successive_halving": pruners.SuccessiveHalvingPruner,
        "hyperband": pruners.HyperbandPruner,
    }.get(pruner_name(space), pruners.NopPruner)(**settings)
