"""The only thing the training code knows of whoever watches it: a Reporter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable


@runtime_checkable
class Reporter(Protocol):
    """Receives metrics as the trial runs and may ask it to stop (a pruner, a scheduler, a user).

    report() is called every logging interval with train metrics and after every evaluation
    with validation metrics (keys prefixed `val_`). should_stop() is asked after each
    evaluation; True ends the trial as pruned, after its last checkpoint is written.
    """

    def report(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def should_stop(self) -> bool: ...


class NullReporter:
    """A Reporter that ignores everything and never stops the trial."""

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def should_stop(self) -> bool:
        return False
