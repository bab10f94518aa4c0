"""Writing files that another process or a later run reads: atomically, durably, with clear errors.

Every such file is written to a temporary name in the same folder, flushed and fsync'd, then
moved into place with os.replace (and the folder fsync'd), so a reader, a kill -9 or a power
cut sees the old content or the new, never half of either. An OSError on the way (disk full,
read-only filesystem, permission) becomes a StorageError whose message says what happened and
to which file, in words a user can act on ("no space left on device while writing PATH").

runner/ and hpo/ both write through these functions; runner/ imports nothing from hpo/.

Example:
    >>> atomic_write_text(Path("runs/s/summary.json"), "{}\\n")
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


class StorageError(OSError):
    """Writing or reading a file failed for a reason outside the program (disk full, ...).

    An OSError still (callers that catch OSError keep working); str() is one line naming the file.
    """

    def __init__(self, message: str, errno_: int | None = None) -> None:
        super().__init__(errno_, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def describe_os_error(err: OSError, path: str | Path, action: str = "writing") -> str:
    """One line for an OSError: 'no space left on device while writing runs/s/x.pt'."""
    if isinstance(err, StorageError):
        return err.message
    code = err.errno
    if code is None and err.args and isinstance(err.args[0], str) and "unexpected pos" in err.args[0]:
        # torch's zip writer reports a short write as "unexpected pos": the disk is full
        code = errno.ENOSPC
    what = os.strerror(code).lower() if code else (str(err) or type(err).__name__)
    return f"{what} while {action} {path}"


def storage_error(err: BaseException, path: str | Path, action: str = "writing") -> StorageError:
    """A StorageError for `err` (an OSError, or torch's RuntimeError for a short write)."""
    if isinstance(err, StorageError):
        return err
    if isinstance(err, OSError):
        return StorageError(describe_os_error(err, path, action), err.errno)
    if "unexpected pos" in str(err) or "No space left" in str(err):
        return StorageError(f"no space left on device while {action} {path}", errno.ENOSPC)
    return StorageError(f"{type(err).__name__}: {err} while {action} {path}")


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call write(handle) on a temporary file beside `path`, fsync it, and rename it into place.

    Raises StorageError (and leaves `path` untouched, no temporary file behind) on failure.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise storage_error(err, path) from err
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError | RuntimeError):
            raise storage_error(err, path) from err
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically and durably; see atomic_write."""
    data = text.encode("utf-8")
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Write `data` as indented JSON (no NaN: strict JSON) atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in `folder` durable (best effort: some filesystems refuse a folder fsync)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def sweep_temporaries(path: str | Path) -> None:
    """Remove the temporary files a writer of `path` killed mid-write left behind."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
