"""Random search: the reference driver, and the one to read first.

A driver declares OPTIONS (what a space file's `driver:` section may set for it) and
check_space (what it cannot search), and implements the Driver protocol of base.py. Like most
drivers, this one is a SuggesterDriver (suggester_driver.py): it only supplies its algorithm (hpo.suggesters.random: trial n's params drawn
from a generator seeded with (seed, n)) and lets hpo.parallel.run_study run the trials (one at
a time or in K worker processes), keep the budget and write the outputs. An interrupted trial
is continued with its own params.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpo.drivers.algorithm_suggester import AlgorithmSuggester
from hpo.drivers.base import SEED, ObjectiveFunction, Option, StudySpec
from hpo.drivers.suggester_driver import MakeSuggester, SuggesterDriver
from hpo.methods import method
from hpo.space import SearchSpace, SpaceError
from hpo.suggesters.random import RandomDraws

OPTIONS: dict[str, Option] = {"seed": SEED}


def check_space(space: SearchSpace, fail: Callable[[str, str], SpaceError]) -> None:
    """Random search samples any space."""


def search_method(space: SearchSpace, study: StudySpec) -> dict[str, Any]:
    """Draws seeded by (seed, trial number); nothing is pruned."""
    return method("random", {"seed": space.driver_options["seed"]})


class RandomSearchDriver(SuggesterDriver):
    """Samples every trial independently and uniformly (log-uniformly for log params)."""

    name = "random"

    def suggester(
        self, space: SearchSpace, study: StudySpec, objective: ObjectiveFunction
    ) -> MakeSuggester:
        draws = RandomDraws(space, space.driver_options.get("seed"), study.enqueue)
        return lambda previous: AlgorithmSuggester(draws, previous)
