"""metrics.jsonl: one JSON object per logged step, evaluation or event, appended as they happen."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only JSON lines; on resume, records after the checkpoint's step are dropped first."""

    def __init__(self, path: Path, resume_step: int | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            path.write_text("")
        elif path.exists():
            # a run killed after its last checkpoint logged steps that the resumed run will redo
            kept = [line for line in path.read_text().splitlines() if _step(line) <= resume_step]
            path.write_text("".join(line + "\n" for line in kept))
        self._handle = path.open("a")

    def write(self, kind: str, step: int, **fields: Any) -> None:
        record = {"type": kind, "step": step, **{k: _finite_or_str(v) for k, v in fields.items()}}
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def read_metrics(path: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl, optionally only those of one type (train, eval, event)."""
    records = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [r for r in records if kind is None or r["type"] == kind]


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62


def _finite_or_str(value: Any) -> Any:
    # JSON has no NaN: write non-finite numbers as strings so the file stays standard
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
