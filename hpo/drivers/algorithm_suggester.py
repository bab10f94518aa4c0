"""The Suggester over one of hpo.suggesters' algorithms, for hpo.parallel.run_study.

The algorithm (hpo.suggesters.random, hpo.suggesters.bayes_opt...) proposes params by trial
number and hears each trial's end; this adds what the local loop needs around it: the next
trial number (after the earlier runs' ones), the finished count the budget reads, and saving
the algorithm's state after each trial when the driver keeps one. The ray driver wraps the
same algorithms in its Tune Searcher instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from hpo.drivers.base import CONTINUE, FINISHED_STATES, Decision, Suggestion, TrialRecord
from hpo.suggesters.algorithm import Algorithm


class AlgorithmSuggester:
    """A Suggester asking `algorithm` for each trial, numbered after those of `previous`."""

    def __init__(
        self,
        algorithm: Algorithm,
        previous: Sequence[TrialRecord],
        save: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.algorithm, self.save = algorithm, save
        self.next_number = max((r.number for r in previous), default=-1) + 1
        self.finished = sum(1 for r in previous if r.state in FINISHED_STATES)
        self.decisions: dict[int, Decision] = {}  # trial number -> the algorithm's last word

    def finished_count(self) -> int:
        return self.finished

    def resume(self, record: TrialRecord) -> Suggestion:
        self.algorithm.resume(record.number, record.params)
        return Suggestion(record.number, dict(record.params))

    def ask(self) -> Suggestion | None:
        number = self.next_number
        self.next_number += 1
        params = self.algorithm.ask(number)
        return None if params is None else Suggestion(number, params)

    def report(self, suggestion: Suggestion, step: int, value: float) -> None:
        self.decisions[suggestion.number] = self.algorithm.report(suggestion.number, step, value)

    def decide(self, suggestion: Suggestion) -> Decision:
        return self.decisions.get(suggestion.number, CONTINUE)

    def tell(self, suggestion: Suggestion, record: TrialRecord) -> None:
        self.decisions.pop(suggestion.number, None)
        self.finished += record.state in FINISHED_STATES
        self.algorithm.tell(suggestion.number, record.state, record.values)
        if self.save is not None and record.state == "complete":
            self.save(self.algorithm.state())
