"""The bayesian-optimization driver: hpo.suggesters.bayes_opt, run by hpo.parallel.run_study.

The algorithm (its coordinates, the one negation, init_points, ConstantLiar with --parallel K)
is hpo.suggesters.bayes_opt, which --driver ray's searcher bayesopt runs too. Here: resume.
Every registered observation is in runs/<study>/bo_observations.json (rewritten atomically
after each complete trial); a complete trial missing from it (killed between the two writes)
is registered from its trial.json. An interrupted trial is continued with its own params (its
point is pending again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hpo.drivers.algorithm_suggester import AlgorithmSuggester
from hpo.drivers.base import ObjectiveFunction, Option, StudySpec, TrialRecord
from hpo.drivers.bo_observations import OBSERVATIONS, restored_bayes_opt
from hpo.drivers.suggester_driver import MakeSuggester, SuggesterDriver
from hpo.methods import method
from hpo.space import SearchSpace, SpaceError
from hpo.study import write_json
from hpo.suggesters.bayes_opt import (
    BAYES_OPT_OPTIONS,
    bayes_opt_settings,
    check_bayes_opt_space,
)

OPTIONS: dict[str, Option] = BAYES_OPT_OPTIONS


def check_space(space: SearchSpace, fail: Callable[[str, str], SpaceError]) -> None:
    """bayes_opt optimizes one objective over at least one searched param."""
    check_bayes_opt_space(space, fail)


def search_method(space: SearchSpace, study: StudySpec) -> dict[str, Any]:
    """bayes_opt's Gaussian process after init_points random trials; nothing is pruned."""
    return method("bayes_opt", bayes_opt_settings(space.driver_options, study.parallel))


class BayesOptDriver(SuggesterDriver):
    """Gaussian-process Bayesian optimization with the bayesian-optimization package."""

    name = "bo"

    def suggester(
        self, space: SearchSpace, study: StudySpec, objective: ObjectiveFunction
    ) -> MakeSuggester:
        return lambda previous: BayesOptSuggester(space, study, previous)


class BayesOptSuggester(AlgorithmSuggester):
    """hpo.suggesters.bayes_opt, restored from bo_observations.json and the trials so far."""

    def __init__(
        self, space: SearchSpace, study: StudySpec, previous: Sequence[TrialRecord]
    ) -> None:
        bayes = restored_bayes_opt(space, study, previous)
        path = study.dir / OBSERVATIONS
        super().__init__(bayes, previous, save=lambda state: write_json(path, state))
        self.optimizer = bayes.optimizer  # bayes_opt's own object, for tests and debugging
