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
    """The resolved pruner and the settings it runs with, e.g. for a study's first line:
    {"pruner": "hyperband", "min_resource": 1, "max_resource": 52, "reduction_factor": 3}."""
    options, name = space.driver_options, pruner_name(space)
    startup, warmup = options["pruner_startup_trials"], options["n_warmup_steps"]
    if name in ("median", "percentile"):
        settings = {"n_startup_trials": startup, "n_warmup_steps": warmup}
        if name == "percentile":
            settings["percentile"] = options["percentile"]
        return {"pruner": name, **settings}
    if name == "successive_halving":
        return {"pruner": name, "reduction_factor": options["reduction_factor"]}
    if name == "hyperband":
        return {
            "pruner": name,
            "min_resource": 1,
            # auto: Optuna takes the steps of the first trial that completes
            "max_resource": space.budget.max_steps or "auto",
            "reduction_factor": options["reduction_factor"],
        }
    return {"pruner": "none"}


def make_pruner(space: SearchSpace) -> Any:
    """The space's Optuna pruner (NopPruner for none)."""
    import optuna.pruners as pruners

    settings = pruner_settings(space)
    name = settings.pop("pruner")
    if name == "median":
        return pruners.MedianPruner(**settings)
    if name == "percentile":
        percentile = settings.pop("percentile")
        return pruners.PercentilePruner(percentile, **settings)
    if name == "successive_halving":
        return pruners.SuccessiveHalvingPruner(**settings)
    if name == "hyperband":
        return pruners.HyperbandPruner(**settings)
    return pruners.NopPruner()
