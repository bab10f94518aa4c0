"""Random search: the reference driver, and the one to read first.

A driver declares OPTIONS (what a space file's `driver:` section may set for it) and
check_space (what it cannot search), and implements the Driver protocol of base.py. Like most
drivers, this one only supplies a Suggester, the ask/tell core, and lets hpo.parallel.run_study
run the trials (one at a time or in K worker processes), keep the budget and write the outputs.

Trial n draws its params from a generator seeded with (seed, n): a seeded run is reproducible,
parallel or not, and a resumed run goes on with the numbers an earlier run did not reach
(no configuration is drawn twice). An interrupted trial is continued with its own params.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from hpo.drivers.base import (
    CONTINUE,
    FINISHED_STATES,
    SEED,
    Decision,
    ObjectiveFunction,
    Option,
    StudySpec,
    Suggestion,
    Tracker,
    TrialRecord,
)
from hpo.methods import method
from hpo.parallel import run_study
from hpo.space import Categorical, Distribution, Fixed, SearchSpace, SpaceError
from hpo.study import StudyResult

OPTIONS: dict[str, Option] = {"seed": SEED}


def check_space(space: SearchSpace, fail: Callable[[str, str], SpaceError]) -> None:
    """Random search samples any space."""


def search_method(space: SearchSpace, study: StudySpec) -> dict[str, Any]:
    """Draws seeded by (seed, trial number); nothing is pruned."""
    return method("random", {"seed": space.driver_options["seed"]})


def draw(distribution: Distribution, rng: random.Random) -> Any:
    """One value, uniform over the choices, the steps, or the (log-)range."""
    if isinstance(distribution, Categorical):
        return rng.choice(distribution.choices)
    if distribution.n_values is not None:
        return distribution.value_at(rng.randrange(distribution.n_values))
    return distribution.from_sample(rng.uniform(*distribution.sample_bounds()))


class RandomSuggester:
    """Draws every searched param; the space keeps those whose condition holds."""

    def __init__(
        self,
        space: SearchSpace,
        seed: int | None,
        previous: Sequence[TrialRecord],
        enqueue: Sequence[dict[str, Any]] = (),
    ) -> None:
        self.space, self.seed, self.enqueue = space, seed, enqueue
        self.next_number = max((r.number for r in previous), default=-1) + 1
        self.finished = sum(1 for r in previous if r.state in FINISHED_STATES)

    def finished_count(self) -> int:
        return self.finished

    def resume(self, record: TrialRecord) -> Suggestion:
        return Suggestion(record.number, dict(record.params))

    def ask(self) -> Suggestion:
        number = self.next_number
        self.next_number += 1
        rng = random.Random(f"{self.seed}:{number}") if self.seed is not None else random.Random()
        sampled = {
            p.name: draw(p.distribution, rng)
            for p in self.space.params
            if not isinstance(p.distribution, Fixed)
        }
        if number < len(self.enqueue):  # known-good configurations go first
            sampled.update(self.enqueue[number])
        return Suggestion(number, self.space.trial_params(sampled))

    def report(self, suggestion: Suggestion, step: int, value: float) -> None:
        pass  # random search learns nothing from a trial

    def decide(self, suggestion: Suggestion) -> Decision:
        return CONTINUE

    def tell(self, suggestion: Suggestion, record: TrialRecord) -> None:
        self.finished += record.state in FINISHED_STATES


class RandomSearchDriver:
    """Samples every trial independently and uniformly (log-uniformly for log params)."""

    name = "random"

    def run(
        self,
        space: SearchSpace,
        study: StudySpec,
        objective: ObjectiveFunction,
        tracker: Tracker | None = None,
    ) -> StudyResult:
        seed = space.driver_options.get("seed")
        return run_study(
            self.name,
            space,
            study,
            objective,
            tracker,
            lambda previous: RandomSuggester(space, seed, previous, study.enqueue),
        )
