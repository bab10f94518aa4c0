"""Matching the runs a killed study left in MLflow to its trial.json records.

trials/<n>/trial.json is the record of a study (hpo.study): it is written before the tracker
hears of a trial's end, so after a kill -9 the records are right and MLflow may lag behind.
When the study resumes (hpo.study.open_study has by then turned records still "running" into
failed, reason INTERRUPTED):

    child run RUNNING, record finished      -> ended as the record says: FINISHED (complete),
                                               FINISHED (pruned: tag hpo.state), KILLED (interrupted), FAILED (failed),
                                               with its reason, value, steps and duration
    child run RUNNING, record running/none  -> KILLED, reason INTERRUPTED
    record finished, no child run           -> a child run made from the record (tag
                                               hpo.backfilled): params, state, value; its
                                               stepped metrics stay in trials/<n>/metrics.jsonl
    child run already ended                 -> left as it is

Metrics still in the killed process's memory (at most the last flush interval's) never reach
MLflow; the trial's metrics.jsonl has them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hpo.records import TrialRecord
from hpo.study import INTERRUPTED


def plan(
    statuses: Mapping[str, str], records: Iterable[TrialRecord], known_runs: Iterable[str]
) -> tuple[list[TrialRecord], list[TrialRecord]]:
    """(records to end RUNNING runs with, records to make runs from); see the module doc.

    statuses: the status of each child run by trial number; known_runs: trial numbers that
    have a run (children, and runs this tracker created or is creating).
    """
    by_number = {str(r.number): r for r in records}
    known = set(known_runs) | set(statuses)
    to_end = []
    for key, status in statuses.items():
        if status != "RUNNING":
            continue
        record = by_number.get(key)
        if record is None or record.state == "running":
            number = int(key) if key.isdigit() else -1
            record = TrialRecord(
                number,
                record.params if record else {},
                "failed",
                reason=INTERRUPTED,
                started=record.started if record else 0.0,
            )
        to_end.append(record)
    to_make = [r for key, r in by_number.items() if key not in known and r.state != "running"]
    return to_end, to_make
