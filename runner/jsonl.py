"""JSON-lines files that a trial appends to as it trains (metrics.jsonl, samples.jsonl).

Every record is one JSON object with a "step" and ends with a newline. The rules that keep such a
file whole through kill -9, disk full and resume:

- Appending: each record goes out in one os.write on an O_APPEND descriptor. If the write fails
  (disk full), the file is cut back to its size before the record, so it never ends in half a
  record because of an error; a kill -9 in the middle of a write can still leave an unterminated
  last line, and every reader here ignores a last line that has no newline.
- Restarting: a fresh run starts from an empty file and a resumed run from the records up to its
  checkpoint's step (`restart`). Both write the new content to a temporary file and rename it
  over the old one (runner.files.atomic_write), so a kill -9 at any moment leaves the old file or
  the new one, never an empty or half one.
- sync() fsyncs the file: the loop calls it before each checkpoint, so the records a checkpoint's
  step covers are on disk whenever the checkpoint is.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from runner.files import append_whole, atomic_write, storage_error, sweep_temporaries


def encode(record: dict[str, Any]) -> bytes:
    """One record as a line of standard JSON (non-finite floats as strings: JSON has no NaN)."""
    plain = {
        k: str(v) if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()
    }
    return (json.dumps(plain) + "\n").encode("utf-8")


def complete_lines(data: bytes) -> list[bytes]:
    """The newline-terminated lines of `data` (a last line without a newline is a cut-off write)."""
    lines = data.split(b"\n")
    return [line for line in lines[:-1] if line.strip()]


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every complete record of a JSON-lines file, in order."""
    return [json.loads(line) for line in complete_lines(Path(path).read_bytes())]


def restart(path: Path, keep_through_step: int | None) -> None:
    """Atomically replace `path` by its records with step <= keep_through_step (None: no records).

    A missing file stays missing when there is nothing to keep. Lines that do not parse (the
    cut-off end of a killed writer) are dropped with the records after the step.
    """
    kept: list[bytes] = []
    if keep_through_step is not None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as err:
            raise storage_error(err, path, "reading") from err
        kept = [line + b"\n" for line in complete_lines(data) if _step(line) <= keep_through_step]
    elif not path.exists():
        return
    atomic_write(path, lambda handle: handle.writelines(kept))
    sweep_temporaries(path)


class Appender:
    """An open JSON-lines file that takes one whole record per append, or none of it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as err:
            raise storage_error(err, path) from err

    def append(self, record: dict[str, Any]) -> None:
        """Write `record` as one line; StorageError (and the file as it was) when that fails."""
        append_whole(self._fd, encode(record), self.path)

    def sync(self) -> None:
        """Make every appended record durable (fsync)."""
        try:
            os.fsync(self._fd)
        except OSError as err:
            raise storage_error(err, self.path) from err

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one record to `path` and fsync it (for files written rarely, like samples.jsonl)."""
    appender = Appender(path)
    try:
        appender.append(record)
        appender.sync()
    finally:
        appender.close()


def _step(line: bytes) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return 1 << 62  # unreadable: treated as after any checkpoint, so dropped
