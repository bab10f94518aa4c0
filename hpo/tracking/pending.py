"""What a study could not send to MLflow, kept on disk until a later command sends it.

runs/<study>/mlflow_pending.jsonl holds one JSON object per line, each what one tracker had
left when it closed (hpo.tracking.buffer.SendBuffer.pending(): run operations in order, metric
rows by run) with an id, and "publish": true when the study's plots and best model were not
published either. A line is appended (O_APPEND, fsync'd) and never edited in place: two
processes of one study (distributed workers) may both add theirs, and a kill mid-write can only
leave a torn last line, which readers skip. A command that sends them (`hpo search --resume`,
`hpo sync`) takes every line, and once its buffer is done (or given up) settles: the file is
rewritten atomically (runner.files) to the lines it did not take (appended meanwhile) plus what
it still could not send, or removed when nothing is left. Appends and settles hold an
exclusive flock on mlflow_pending.jsonl.lock.

Sending a record twice (a taker killed before it settled) is harmless: MLflow's SQL stores
ignore an exact duplicate metric row, a run's creation looks for the run first, and params,
tags and ends repeat their values. NaN metric values are written as NaN (Python's JSON).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from runner.files import (
    StorageError,
    append_whole,
    atomic_write_text,
    describe_os_error,
    exclusive_lock,
)

log = logging.getLogger(__name__)

PENDING_FILE = "mlflow_pending.jsonl"
LEGACY_FILE = "mlflow_pending.json"  # one object, written by hpo before this journal


def count(pending: dict[str, Any]) -> int:
    """Records in a pending() object: run operations plus metric rows."""
    return len(pending.get("ops", ())) + sum(len(r) for r in pending.get("metrics", {}).values())


def is_empty(pending: dict[str, Any]) -> bool:
    return not count(pending) and not pending.get("publish")


def merge(entries: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One pending() object from several, in order (a run's rows stay in order)."""
    merged: dict[str, Any] = {"ops": [], "metrics": {}, "publish": False}
    for entry in entries:
        merged["ops"].extend(entry.get("ops", ()))
        for run, rows in entry.get("metrics", {}).items():
            merged["metrics"].setdefault(run, []).extend(rows)
        merged["publish"] = merged["publish"] or bool(entry.get("publish"))
    return merged


class PendingJournal:
    """runs/<study>/mlflow_pending.jsonl; see the module doc."""

    def __init__(self, study_dir: str | Path) -> None:
        self.path = Path(study_dir) / PENDING_FILE
        self.legacy = Path(study_dir) / LEGACY_FILE

    def exists(self) -> bool:
        return self.path.is_file() or self.legacy.is_file()

    def append(self, pending: dict[str, Any]) -> None:
        """Add one entry (a StorageError, in words, when the disk refuses)."""
        if is_empty(pending):
            return
        line = _line(pending)
        with self._locked():
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    size = os.fstat(fd).st_size
                    if size and os.pread(fd, 1, size - 1) != b"\n":  # after a torn line
                        line = b"\n" + line
                    append_whole(fd, line, self.path)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError as err:
                raise StorageError(describe_os_error(err, self.path), err.errno) from err

    def take(self) -> tuple[dict[str, Any], list[str]]:
        """(every entry merged, their ids for settle()); the file stays until settle()."""
        with self._locked():
            entries = self._read()
        return merge(entries), [e["id"] for e in entries]

    def settle(self, taken: Iterable[str], remaining: dict[str, Any] | None) -> None:
        """Replace the entries `taken` by `remaining` (what is still unsent), atomically."""
        taken = set(taken)
        with self._locked():
            kept = [e for e in self._read() if e["id"] not in taken]
            if remaining is not None and not is_empty(remaining):
                kept.append(remaining)
            if kept:
                atomic_write_text(self.path, b"".join(_line(e) for e in kept).decode())
            else:
                self.path.unlink(missing_ok=True)
            self.legacy.unlink(missing_ok=True)  # taken with the rest (its id is "legacy")

    def _read(self) -> list[dict[str, Any]]:
        entries = []
        if self.legacy.is_file():
            legacy = _parse(self.legacy.read_text(errors="replace"), self.legacy)
            if legacy is not None:
                entries.append({**legacy, "id": "legacy"})
        if not self.path.is_file():
            return entries
        text = self.path.read_text(errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            entry = _parse(line, f"{self.path}:{number}") if line.strip() else None
            if entry is not None:
                entries.append({**entry, "id": str(entry.get("id") or f"line-{number}")})
        return entries

    def _locked(self) -> contextlib.AbstractContextManager[None]:
        return exclusive_lock(self.path.with_name(self.path.name + ".lock"))


def _line(pending: dict[str, Any]) -> bytes:
    entry = {"id": uuid.uuid4().hex, **pending}  # an entry kept by settle() keeps its id
    return (json.dumps(entry, separators=(",", ":")) + "\n").encode()


def _parse(text: str, where: object) -> dict[str, Any] | None:
    try:
        entry = json.loads(text)
    except ValueError:  # a torn last line of a process killed mid-append
        log.warning("tracking: %s is not a complete record; skipped", where)
        return None
    return entry if isinstance(entry, dict) else None
