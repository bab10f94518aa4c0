"""Which trials of a study are best: on its first objective, or the Pareto front of several.

Pure functions of the trial records and the space's objectives; hpo.study (summary.json,
best/), hpo.study_status (`hpo status`, `hpo best`) and the live view rank trials with them.
"""

from __future__ import annotations

from collections.abc import Sequence

from hpo.records import TrialRecord
from hpo.space import Objective


def best_trial(
    records: Sequence[TrialRecord], objectives: Sequence[Objective]
) -> TrialRecord | None:
    """The complete trial best on the first objective (among the Pareto front when several)."""
    candidates = [r for r in records if r.state == "complete" and r.values]
    if len(objectives) > 1:
        front = set(pareto_front(records, objectives))
        candidates = [r for r in candidates if r.number in front]
    best = None
    for record in candidates:
        if best is None or objectives[0].is_better(record.values[0], best.values[0]):
            best = record
    return best


def pareto_front(records: Sequence[TrialRecord], objectives: Sequence[Objective]) -> list[int]:
    """Numbers of the complete trials no other complete trial dominates."""
    if len(objectives) < 2:
        return []
    signs = [1.0 if o.direction == "minimize" else -1.0 for o in objectives]
    points = {
        r.number: [s * v for s, v in zip(signs, r.values, strict=True)]
        for r in records
        if r.state == "complete" and r.values
    }

    def dominated(p: list[float]) -> bool:
        return any(
            all(a <= b for a, b in zip(q, p, strict=True)) and q != p for q in points.values()
        )

    return [number for number, p in points.items() if not dominated(p)]
