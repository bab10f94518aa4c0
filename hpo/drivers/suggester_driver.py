"""The Driver of every driver whose trials hpo.parallel.run_study runs over a Suggester.

random, bo and optuna differ only in their name and in the Suggester they hand run_study (made
from the trials of earlier runs, when run_study has read them): they subclass SuggesterDriver
and say how to make it; run() is theirs in common. The ray driver runs its own trial loop.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hpo.drivers.base import ObjectiveFunction, StudySpec, Suggester, Tracker, TrialRecord
from hpo.parallel import run_study
from hpo.space import SearchSpace
from hpo.study import StudyResult

MakeSuggester = Callable[[Sequence[TrialRecord]], Suggester]


class SuggesterDriver:
    """A Driver that asks hpo.parallel.run_study to run a study with its Suggester."""

    name = ""  # the --driver name, in summary.json and the study's files

    def run(
        self,
        space: SearchSpace,
        study: StudySpec,
        objective: ObjectiveFunction,
        tracker: Tracker | None = None,
    ) -> StudyResult:
        make_suggester = self.suggester(space, study, objective)
        return run_study(self.name, space, study, objective, tracker, make_suggester)

    def suggester(
        self, space: SearchSpace, study: StudySpec, objective: ObjectiveFunction
    ) -> MakeSuggester:
        """How this study's Suggester is made from the trials of earlier runs."""
        raise NotImplementedError
