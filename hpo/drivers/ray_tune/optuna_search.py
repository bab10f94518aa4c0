"""The optuna driver's sampler and pruner inside Ray: searcher optuna, scheduler auto.

Moving a study to Ray changes where its trials run, not which configurations are tried. The
searcher asks an in-memory Optuna study built as --driver optuna builds its own: the sampler of
samplers.make_sampler (same options, same seed, mixed the same way for a resumed study), the
pruner of pruners.make_pruner, the study's name (HyperbandPruner hashes it into its brackets);
it asks each param through suggester.suggest_params (the same calls in the same order) and
tells each trial's end as OptunaSuggester does: complete with its values, pruned, or failed.
So a seeded study run one trial at a time tries the same params on both drivers
(tests/hpo/test_ray_driver.py). Several trials at once make the order depend on timing on
both drivers alike. One difference is left: the study lives in Tune's saved searcher state,
not in a journal, so a later Ray experiment of the study (after --resume) starts a new
in-memory study; its sampler is seeded as a resumed study's (no params drawn twice) but does
not see the earlier trials, which --driver optuna's journal keeps.

Pruning is the optuna driver's too, and as cooperative: each result holding the objective
metric is trial.report(value, step), and when trial.should_prune() says so the searcher writes
trials/<n>/prune, which the trial's reporter reads in should_stop(). Tune's function trainable
waits inside tune.report until the driver process has handled that result, so the file is
there when report() returns. An objective that never asks should_stop() runs to its end, as
under --driver optuna. Ray's own schedulers (asha, hyperband, median, pbt) instead stop trials
from outside; under them, and under the other searchers, this pruner is off.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

from hpo.drivers.base import StudySpec
from hpo.parallel import objective_values
from hpo.space import SearchSpace
from hpo.suggesters.optuna_pruners import make_pruner, pruner_name
from hpo.suggesters.optuna_samplers import make_sampler, suggest_params
from runner.outcome import CONTINUE, Decision, pruned_at

PRUNE_FILE = "prune"  # in trials/<n>/: the pruner said stop; the trial's should_stop() reads it


def optuna_prunes(space: SearchSpace) -> bool:
    """Whether Optuna's pruner decides which trials stop (searcher optuna, scheduler auto)."""
    options = space.driver_options
    return (
        options["searcher"] == "optuna"
        and options["scheduler"] == "auto"
        and len(space.objectives) == 1
        and pruner_name(space) != "none"
    )


class OptunaTrials:
    """An in-memory Optuna study, one Optuna trial per Ray trial id; pickled with the searcher."""

    def __init__(
        self,
        space: SearchSpace,
        study: StudySpec,
        history: int,
        enqueue: Sequence[Mapping[str, Any]],
    ) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the live view reports trials
        self.space, self.metric, self.parallel = space, space.objective.metric, study.parallel
        self.prunes = optuna_prunes(space)
        self.study = optuna.create_study(
            sampler=make_sampler(space, study.parallel, history=history),
            pruner=make_pruner(space) if self.prunes else optuna.pruners.NopPruner(),
            study_name=study.name,
            directions=[o.direction for o in space.objectives],
        )
        for params in enqueue:
            self.study.enqueue_trial(dict(params), skip_if_exists=True)
        self.trials: dict[str, Any] = {}  # Ray trial id -> its Optuna trial
        self.reported: dict[str, set[int]] = {}  # Ray trial id -> steps reported

    def reseed(self, history: int) -> None:
        """Tune restored this from its saved state (--resume after a kill): a sampler seeded as
        a resumed study's, since the saved one would draw again what it drew after the save."""
        self.study.sampler = make_sampler(self.space, self.parallel, history=history)

    def exhausted(self) -> bool:
        """sampler grid: every point handed out (OptunaSuggester.ask checks the same)."""
        from optuna.samplers import GridSampler

        sampler = self.study.sampler
        return isinstance(sampler, GridSampler) and sampler.is_exhausted(self.study)

    def suggest(self, trial_id: str) -> dict[str, Any]:
        trial = self.study.ask()
        self.trials[trial_id], self.reported[trial_id] = trial, set()
        return suggest_params(trial, self.space)

    def report(self, trial_id: str, result: Mapping[str, Any]) -> Decision:
        """Report the result's objective value at its step; the pruner's decision."""
        trial, value, step = self.trials.get(trial_id), result.get(self.metric), result.get("step")
        if (
            not self.prunes
            or trial is None
            or "hpo_state" in result  # the trial's end: what it returned, told in tell()
            or not isinstance(value, numbers.Real)
            or not math.isfinite(value)
            or not isinstance(step, int)
        ):
            return CONTINUE
        if step not in self.reported[trial_id]:  # Optuna keeps the first value of a step
            self.reported[trial_id].add(step)
            trial.report(float(value), step)
        return pruned_at(step) if trial.should_prune() else CONTINUE

    def tell(self, trial_id: str, result: Mapping[str, Any] | None, error: bool) -> None:
        """The trial's end, as OptunaSuggester tells it: complete with its values, pruned
        (it ended without returning: the pruner or the objective stopped it) or failed."""
        from optuna.trial import TrialState

        trial = self.trials.pop(trial_id, None)
        self.reported.pop(trial_id, None)
        if trial is None:
            return
        result = result or {}
        if not error and result.get("hpo_state") == "complete":
            values, reason = objective_values(
                json.loads(result["hpo_values"]), self.space.objectives
            )
            if reason is None:
                self.study.tell(trial, values)
                return
        failed = error or result.get("hpo_state") == "complete"  # its values were not usable
        self.study.tell(trial, state=TrialState.FAIL if failed else TrialState.PRUNED)
