"""Who holds a study, and the file lock that says so: the parts of hpo.study_lock that the
database locks (hpo.study_db_lock) and the Optuna driver's worker folders use too.

A FileLock is an exclusive fcntl.flock on a file that holds its Holder's pid, host and start
time (JSON), for the message that refuses a second process. The kernel releases a flock when
its process dies; a taker checks, once it has the flock, that the file it locked is still the
one at the path (a holder removes the file when it is done).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from runner.errors import UserInputError

HOLDER_WAIT_SECONDS = 2.0  # how long a refused process waits for the holder to write its details


class StudyBusyError(UserInputError):
    """The study is run by another process; the message names it and where it runs."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: enough for a user to find the process (and decide to wait or stop it)."""

    pid: int
    host: str
    since: float  # unix time the lock was taken

    @classmethod
    def me(cls) -> Holder:
        return cls(os.getpid(), socket.gethostname(), time.time())

    def to_json(self) -> str:
        return json.dumps({"pid": self.pid, "host": self.host, "since": self.since}) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Holder | None:
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), float(data["since"]))
        except (ValueError, TypeError, KeyError):
            return None

    def describe(self) -> str:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.since))
        return f"process {self.pid} on host {self.host} since {started}"


class FileLock:
    """An exclusive flock on `path`, the holder's details written in the file.

    FileLock.acquire(path, holder) returns the lock, or None when another open file holds it
    (FileLock.holder_of(path) then says who). The lock ends with release() or with the process.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, path: Path, holder: Holder) -> FileLock | None:
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as err:
                raise UserInputError(
                    f"{path}: cannot create the lock file ({err.strerror or err})"
                ) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            if _same_file(path, fd):
                break
            os.close(fd)  # its holder removed it between our open and flock: lock the new one
        lock = cls(path, fd)
        lock._write(holder)
        return lock

    def _write(self, holder: Holder) -> None:
        """Best effort: the flock is the lock, the details only make the refusal readable."""
        data = holder.to_json().encode()
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, data, 0)
            os.fsync(self._fd)
        except OSError:
            pass  # a full disk: the lock holds all the same

    @staticmethod
    def holder_of(path: Path) -> Holder | None:
        """The details the holder wrote (None while it has not, or when it could not)."""
        deadline = time.monotonic() + HOLDER_WAIT_SECONDS
        while True:
            try:
                holder = Holder.from_json(path.read_text())
            except (OSError, UnicodeDecodeError):
                holder = None
            if holder is not None or time.monotonic() >= deadline:
                return holder
            time.sleep(0.05)

    def release(self) -> None:
        """Remove the file (under the lock: a taker sees it gone and locks a new one), unlock."""
        if self._fd < 0:
            return
        try:
            if _same_file(self.path, self._fd):
                self.path.unlink()
        except OSError:
            pass
        os.close(self._fd)
        self._fd = -1

    def __del__(self) -> None:  # a lock dropped without release() (its owner was collected)
        try:
            self.release()
        except Exception:  # noqa: BLE001 (interpreter shutdown: the kernel unlocks anyway)
            pass


def _same_file(path: Path, fd: int) -> bool:
    try:
        at_path, held = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (at_path.st_dev, at_path.st_ino) == (held.st_dev, held.st_ino)
