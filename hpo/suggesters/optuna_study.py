"""Optuna's sampler and pruner in an in-memory study, asked by trial number (an Algorithm).

For a driver whose trials Optuna does not run itself (--driver ray): the study is built as
--driver optuna builds its own, the sampler of optuna_samplers.make_sampler (same options,
same seed, mixed the same way for a resumed study), the pruner of optuna_pruners.make_pruner,
the study's name (HyperbandPruner hashes it into its brackets), each param asked through
suggest_params (the same calls in the same order), each trial's end told as OptunaSuggester
tells it. So a seeded study run one trial at a time tries the same params on both drivers.
The study lives in memory (the driver keeps it, Ray pickles it with its searcher's state):
a new one does not see the trials of an earlier one, which --driver optuna's journal keeps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hpo.space import SearchSpace
from hpo.suggesters.optuna_pruners import make_pruner
from hpo.suggesters.optuna_samplers import make_sampler, suggest_params
from runner.outcome import CONTINUE, Decision, pruned_at


class OptunaStudy:
    """An in-memory Optuna study, one Optuna trial per trial number."""

    def __init__(
        self,
        space: SearchSpace,
        name: str,
        parallel: int,
        history: int = 0,
        enqueue: Sequence[Mapping[str, Any]] = (),
        prunes: bool = False,
    ) -> None:
        """history: trials already in the study; prunes: the space's pruner decides stops."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the live view reports trials
        self.space, self.parallel, self.prunes = space, parallel, prunes
        self.study = optuna.create_study(
            sampler=make_sampler(space, parallel, history=history),
            pruner=make_pruner(space) if prunes else optuna.pruners.NopPruner(),
            study_name=name,
            directions=[o.direction for o in space.objectives],
        )
        for params in enqueue:
            self.study.enqueue_trial(dict(params), skip_if_exists=True)
        self.trials: dict[int, Any] = {}  # trial number -> its Optuna trial
        self.reported: dict[int, set[int]] = {}  # trial number -> steps reported

    def reseed(self, history: int) -> None:
        """Restored from a saved state (Ray's, after a kill): a sampler seeded as a resumed
        study's, since the saved one would draw again what it drew after the save."""
        self.study.sampler = make_sampler(self.space, self.parallel, history=history)

    def ask(self, number: int) -> dict[str, Any] | None:
        from optuna.samplers import GridSampler

        sampler = self.study.sampler  # sampler grid: every point handed out (as OptunaSuggester)
        if isinstance(sampler, GridSampler) and sampler.is_exhausted(self.study):
            return None
        trial = self.study.ask()
        self.trials[number], self.reported[number] = trial, set()
        return self.space.trial_params(suggest_params(trial, self.space))

    def resume(self, number: int, params: Mapping[str, Any]) -> None:
        pass  # the in-memory study never held the earlier run's trial

    def report(self, number: int, step: int, value: float) -> Decision:
        trial = self.trials.get(number)
        if not self.prunes or trial is None:
            return CONTINUE
        if step not in self.reported[number]:  # Optuna keeps the first value of a step
            self.reported[number].add(step)
            trial.report(float(value), step)
        return pruned_at(step) if trial.should_prune() else CONTINUE

    def tell(self, number: int, state: str, values: Sequence[float] | None) -> None:
        from optuna.trial import TrialState

        trial = self.trials.pop(number, None)
        self.reported.pop(number, None)
        if trial is None:
            return
        if state == "complete" and values:
            self.study.tell(trial, list(values))
        else:
            self.study.tell(
                trial, state=TrialState.PRUNED if state == "pruned" else TrialState.FAIL
            )

    def state(self) -> dict[str, Any]:
        return {}
