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

import contextlib
import errno
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any


def _new_file_mode() -> int:
    umask = os.umask(0o022)  # the only way to read the umask is to set it: once, at import
    os.umask(umask)
    return 0o666 & ~umask


_NEW_FILE_MODE = _new_file_mode()
_SHORT_WRITE = re.compile(r"unexpected pos|\d+ requested and \d+ written")


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
    if (
        code is None
        and err.args
        and isinstance(err.args[0], str)
        and _SHORT_WRITE.search(err.args[0])
    ):
        # a short write to a regular file means the disk is full: torch's zip writer says
        # "unexpected pos", numpy's tofile/np.save "N requested and M written"
        code = errno.ENOSPC
    what = os.strerror(code).lower() if code else (str(err) or type(err).__name__)
    return f"{what} while {action} {path}"


def storage_error(err: BaseException, path: str | Path, action: str = "writing") -> StorageError:
    """A StorageError for `err` (an OSError, or torch's RuntimeError for a short write)."""
    if isinstance(err, StorageError):
        return err
    if isinstance(err, OSError):
        return StorageError(describe_os_error(err, path, action), err.errno)
    # torch's zip writer turns the OSError of its write callback (disk full, quota, EIO) into a
    # RuntimeError "unexpected pos"; the OSError is still there as the exception's context
    cause, seen = err.__cause__ or err.__context__, set()
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, OSError):
            return StorageError(describe_os_error(cause, path, action), cause.errno)
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    if _SHORT_WRITE.search(str(err)) or "No space left" in str(err):
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
        os.fchmod(fd, _NEW_FILE_MODE)  # mkstemp makes 0600; keep what open() would have made
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


def append_whole(fd: int, data: bytes, path: str | Path) -> None:
    """Append `data` to `fd` (opened with O_APPEND) in full, or leave the file as it was.

    Unbuffered writes, so a short write (the disk filling) is seen here and not left in a
    buffer; on failure the file is cut back to its size before, so no half record stays for a
    reader (metrics.jsonl, the Optuna journal, the tracking journal). StorageError naming `path`.
    The caller fsyncs when the record must survive a power cut.
    """
    size = os.fstat(fd).st_size
    rest = memoryview(data)
    try:
        while rest:
            written = os.write(fd, rest)
            if written == 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            rest = rest[written:]
    except OSError as err:
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        raise storage_error(err, path) from err


@contextlib.contextmanager
def exclusive_lock(lock_path: str | Path) -> Iterator[None]:
    """Hold an exclusive flock on `lock_path` (created when missing) while the block runs.

    The kernel releases it when the process dies, so a killed holder never blocks the next one.
    The file stays: deleting it would let a third process lock a new inode. StorageError when
    the lock file cannot be opened.
    """
    lock_path = Path(lock_path)
    try:
        handle = lock_path.open("a")
    except OSError as err:
        raise storage_error(err, lock_path, "opening") from err
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the handle closes
        yield
