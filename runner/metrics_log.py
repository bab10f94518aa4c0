"""metrics.jsonl: one JSON object per logged step, evaluation or event, appended as they happen.

Resume: truncate by rewriting, not append-and-filter. A resumed run first replaces the file by its
records up to the checkpoint's step (written to a temporary file, fsync'd, renamed over the old
one: runner.jsonl.restart), then appends. So the file a resumed run ends with equals an
uninterrupted run's record for record, with one `data` record, and readers need no rules about
repeated steps; a kill -9 at any moment, the rewrite included, leaves the old file or the new one,
never an empty or half one. Records a killed run wrote after its last checkpoint are dropped:
the resumed run writes them again, the same.

Which fields are exact across a resume (equal to an uninterrupted run's): every record's type
and step; train loss, lr, grad_norm (the loss window is checkpointed with the trial's state);
eval metrics; events and layer_grad_norms; the data record (written once, by the run that started
the trial). Wall-clock and process figures are not: tokens_per_sec, step_time, mfu and
peak_memory_mb, and the data record's prepare_seconds and from_cache (NOT_REPRODUCIBLE;
`reproducible(record)` drops them, to compare two runs' files). tokens_per_sec still means
tokens over training time: the window's seconds are checkpointed too, the downtime is not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runner.jsonl import Appender, read_records, restart

# fields that measure the clock or the process, not the training: they differ between two runs
# of one config, and between an uninterrupted run and a resumed one
NOT_REPRODUCIBLE = frozenset(
    {
        "tokens_per_sec",
        "step_time",
        "mfu",
        "peak_memory_mb",
        "prepare_seconds",
        "from_cache",
        "val_latency_ms",
    }
)


class MetricsLog:
    """Append-only JSON lines; on resume, records after the checkpoint's step are dropped first.

    Writes raise runner.files.StorageError (disk full, ...) and leave the file whole.
    """

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        restart(path, resume_step)
        self._appender = Appender(path)
        # what the file already holds, e.g. whether the run that started the trial logged `data`
        self.kinds = {record["type"] for record in read_records(path)}

    def write(self, kind: str, step: int, **fields: Any) -> None:
        self._appender.append({"type": kind, "step": step, **fields})
        self.kinds.add(kind)

    def sync(self) -> None:
        """fsync the records written so far (before a checkpoint that covers their steps)."""
        self._appender.sync()

    def close(self) -> None:
        self._appender.close()


def read_metrics(path: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl, optionally only those of one type (train, eval, event).

    A last line without a newline (a writer killed mid-record) is not a record and is skipped.
    """
    return [r for r in read_records(path) if kind is None or r["type"] == kind]


def reproducible(record: dict[str, Any]) -> dict[str, Any]:
    """`record` without its NOT_REPRODUCIBLE fields: what a resumed run must log identically."""
    return {k: v for k, v in record.items() if k not in NOT_REPRODUCIBLE}
