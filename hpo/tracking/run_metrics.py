"""The metrics a tracker sends to MLflow: their names, and what it sums up from them.

A trial's reported metrics go to its run by step under their MLflow name (mlflow_store.
clean_key, learnt once per name). Of its validation metrics (val_*, and the objectives) the
book keeps the best and last value, which end the run as best_<m> and final_<m>. The study's
run gets its own metrics, all named study_* (STUDY_PREFIX) so that no chart mixes them with a
trial's metric of the same name: counts by state, and each complete trial's value and the best
so far by trial number (an optimization history).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from hpo.tracking.buffer import Row
from hpo.tracking.mlflow_store import clean_key
from runner.direction import lower_is_better

if TYPE_CHECKING:
    from hpo.records import TrialRecord
    from hpo.space import SearchSpace

STUDY_PREFIX = "study_"  # of the parent run's metrics: never the name of a trial's metric


class MetricBook:
    """The metric names of one study, each open trial's best and last validation values, and
    the study's counts by state and best value so far."""

    def __init__(self) -> None:
        self.space: SearchSpace | None = None  # its objectives are validation metrics
        self.counts = {"complete": 0, "pruned": 0, "failed": 0}
        self.best: float | None = None
        self._keys: dict[str, tuple[str, bool]] = {}  # metric -> MLflow name, is validation
        self._evals: dict[str, dict[str, tuple[float, float]]] = {}  # trial -> metric -> best, last

    # ------------------------------------------------------------------ a trial's metrics

    def open_trial(self, run: str) -> None:
        self._evals[run] = {}

    def is_open(self, run: str) -> bool:
        return run in self._evals

    def close_trial(self, run: str) -> dict[str, tuple[float, float]]:
        """The trial's validation metrics: name -> (best, last); it is no longer open."""
        return self._evals.pop(run, {})

    def rows(self, run: str, step: int, metrics: Mapping[str, float], now: int) -> list[Row]:
        """The numbers among `metrics` as rows to send; the best and last values noted."""
        evals = self._evals.setdefault(run, {})
        rows: list[Row] = []
        for key, value in metrics.items():
            known = self._keys.get(key) or self._learn(key)
            if type(value) is not float:  # noqa: E721 (the common case first: a plain float)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                value = float(value)
            rows.append((known[0], value, now, step))
            if known[1] and math.isfinite(value):
                best = evals.get(key, (value, value))[0]
                evals[key] = (value if self._better(key, value, best) else best, value)
        return rows

    def key(self, key: str) -> str:
        """The metric's MLflow name."""
        return (self._keys.get(key) or self._learn(key))[0]

    # ------------------------------------------------------------------ the study's metrics

    def count(self, record: TrialRecord) -> None:
        """Count an ended trial by state; a complete one may be the best so far."""
        if record.state in self.counts:
            self.counts[record.state] += 1
        value, objective = record.value, self.space.objective
        if record.state == "complete" and value is not None and math.isfinite(value):
            if self.best is None or objective.is_better(value, self.best):
                self.best = value

    def study_rows(self, record: TrialRecord, now: int) -> list[Row]:
        """The study's metrics after trial `record` ended (counted), at its number as step."""
        metric, step = self.space.objective.metric, record.number
        rows: list[Row] = [
            (f"{STUDY_PREFIX}n_{state}", float(n), now, step) for state, n in self.counts.items()
        ]
        if record.state == "complete" and record.value is not None:
            rows.append((self.key(f"{STUDY_PREFIX}trial_{metric}"), record.value, now, step))
        if self.best is not None:
            rows.append((self.key(f"{STUDY_PREFIX}best_{metric}"), self.best, now, step))
        return rows

    # ------------------------------------------------------------------ small things

    def _better(self, key: str, value: float, than: float) -> bool:
        for objective in self.space.objectives if self.space else ():
            if objective.metric == key:
                return objective.is_better(value, than)
        return value < than if lower_is_better(key) else value > than

    def _learn(self, key: str) -> tuple[str, bool]:
        """A metric's MLflow name, and whether it is a validation metric (val_*, an objective)."""
        objectives = self.space.objectives if self.space else ()
        evaluated = key.startswith("val_") or any(o.metric == key for o in objectives)
        known = self._keys[key] = (clean_key(key), evaluated)
        return known
