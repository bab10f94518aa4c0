"""The Optuna pruner a space's `driver:` options name, and what `auto` picks.

`auto` is decided here and nowhere else (the ray driver and the study's first line read it
through pruner_name and pruner_settings). The evidence is bench/lcbench.py (BENCHMARKS.md,
"Search defaults on learning curves"): on 10 LCBench tasks x 20 seeds, where learning curves
cross, the median pruner stops slow starters that would have become the best. Hyperband whose
first rung waits MIN_RESOURCE_FRACTION of a trial's steps matched full-budget random search's
best with 0.30x its epochs on the median task and stayed level with unpruned TPE at the full
budget; hyperband from step 1 (0.33x) and successive halving from 8% (0.24x) pruned slow
starters that unpruned TPE, given the same epochs, went on to beat on 6 tasks of 10.
"""

from __future__ import annotations

from typing import Any

from hpo.space import SearchSpace

PRUNERS = ("auto", "median", "percentile", "successive_halving", "hyperband", "none")
AUTO_PRUNER = "hyperband"  # what auto picks for one objective outside gp (issue 19)
# The first rung of hyperband and successive halving, as a fraction of a full trial's steps
# (budget.max_steps, or the first complete trial's steps when the space does not say): 6 of
# LCBench's 52 epochs. With max resource 52 and reduction factor 3 that makes two brackets,
# pruning from step 6 and from step 18. Optuna's defaults prune from step 1 (hyperband) or 1%
# of the steps (successive halving), where slow starters still look worst.
MIN_RESOURCE_FRACTION = 0.12


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
    if name not in ("successive_halving", "hyperband"):
        return {}
    steps = space.budget.max_steps
    if steps:
        settings = {"min_resource": max(1, round(steps * MIN_RESOURCE_FRACTION))}
    else:  # the horizon is learnt from the first complete trial
        settings = {"min_resource_fraction": MIN_RESOURCE_FRACTION}
    if name == "hyperband":
        settings["max_resource"] = steps or "auto"
    return {**settings, "reduction_factor": options["reduction_factor"]}


def make_pruner(space: SearchSpace) -> Any:
    """The space's Optuna pruner (NopPruner for none)."""
    import optuna.pruners as pruners

    name, settings = pruner_name(space), pruner_settings(space)
    if "min_resource_fraction" in settings:  # no budget.max_steps: learn it from a trial
        fraction = settings.pop("min_resource_fraction")
        pruner = _horizon_class(name)(**settings)
        pruner.min_resource_fraction = fraction
        return pruner
    return {
        "median": pruners.MedianPruner,
        "percentile": pruners.PercentilePruner,
        "successive_halving": pruners.SuccessiveHalvingPruner,
        "hyperband": pruners.HyperbandPruner,
    }.get(name, pruners.NopPruner)(**settings)


# Optuna's pruners with min_resource a fraction of the first complete trial's steps, for
# spaces that do not say max_steps; nothing is pruned until a trial completes. Optuna's own
# SuccessiveHalvingPruner(min_resource="auto") does this with a fixed 1%, and its Hyperband
# learns max_resource the same way but takes min_resource as a number.
HORIZON_CLASSES = {
    "successive_halving": "HorizonSuccessiveHalvingPruner",
    "hyperband": "HorizonHyperbandPruner",
}


def _first_rung(study: Any, fraction: float) -> int | None:
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    steps = [t.last_step for t in complete if t.last_step is not None]
    return max(1, round(max(steps) * fraction)) if steps else None


def _horizon_class(pruner: str) -> Any:
    class_name = HORIZON_CLASSES[pruner]
    made = globals().get(class_name)
    if made is not None:
        return made
    from optuna.pruners import HyperbandPruner, SuccessiveHalvingPruner

    class HorizonSuccessiveHalvingPruner(SuccessiveHalvingPruner):
        min_resource_fraction = MIN_RESOURCE_FRACTION

        def __init__(self, reduction_factor: int) -> None:
            super().__init__(min_resource="auto", reduction_factor=reduction_factor)

        def prune(self, study: Any, trial: Any) -> bool:
            if self._min_resource is None:  # Optuna's "auto" would take 1% here
                self._min_resource = _first_rung(study, self.min_resource_fraction)
                if self._min_resource is None:
                    return False
            return super().prune(study, trial)

    class HorizonHyperbandPruner(HyperbandPruner):
        min_resource_fraction = MIN_RESOURCE_FRACTION

        def __init__(self, max_resource: str, reduction_factor: int) -> None:
            super().__init__(max_resource=max_resource, reduction_factor=reduction_factor)

        def _try_initialization(self, study: Any) -> None:
            # Optuna sets max_resource from the first complete trial here; min_resource too
            if not self._pruners:
                first_rung = _first_rung(study, self.min_resource_fraction)
                if first_rung is None:
                    return
                self._min_resource = first_rung
            super()._try_initialization(study)

    made = {
        "successive_halving": HorizonSuccessiveHalvingPruner,
        "hyperband": HorizonHyperbandPruner,
    }[pruner]
    made.__module__ = __name__  # pickled by name (Ray's searcher state), not as a local
    made.__qualname__ = class_name
    globals()[class_name] = made
    return made


def __getattr__(name: str) -> Any:
    """The Horizon* pruners, made on first use so that importing this module does not import
    Optuna; module attributes, so that a study holding one pickles (Ray keeps its searcher's
    state with plain pickle) and unpickles by name in another process."""
    for pruner, class_name in HORIZON_CLASSES.items():
        if name == class_name:
            return _horizon_class(pruner)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
