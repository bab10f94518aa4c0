"""The one interface of a search algorithm, which every driver runs the same way.

An Algorithm proposes the params of a trial by its number and hears how trials went. The local
loop (hpo.parallel.run_study, through hpo.drivers.algorithm_suggester, with --parallel K and
PostgreSQL workers alike) and the ray driver's Tune Searcher ask the same object the same
questions, so a seeded study tries the same configurations on both. What a driver adds around
it (trial numbers, the budget, files, workers, Ray's cluster and schedulers) is not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from runner.outcome import CONTINUE, Decision


class Algorithm(Protocol):
    """ask a configuration for a trial; tell its result; describe its state for resume."""

    def ask(self, number: int) -> dict[str, Any] | None:
        """The params of trial `number` (active and fixed ones), or None once exhausted."""
        ...

    def resume(self, number: int, params: Mapping[str, Any]) -> None:
        """Trial `number` runs again with its own params (an interrupted trial, continued)."""
        ...

    def report(self, number: int, step: int, value: float) -> Decision:
        """An intermediate value of the first objective metric: stop the trial (why), or go on."""
        ...

    def tell(self, number: int, state: str, values: Sequence[float] | None) -> None:
        """Trial `number` ended: complete (values finite), pruned, failed or interrupted."""
        ...

    def state(self) -> dict[str, Any]:
        """What a resumed study restores the algorithm from (plain JSON); {} when nothing."""
        ...


class LearnsNothing:
    """The parts of an Algorithm that hear nothing: for samplers that ignore the results."""

    def resume(self, number: int, params: Mapping[str, Any]) -> None:
        pass

    def report(self, number: int, step: int, value: float) -> Decision:
        return CONTINUE

    def tell(self, number: int, state: str, values: Sequence[float] | None) -> None:
        pass

    def state(self) -> dict[str, Any]:
        return {}
