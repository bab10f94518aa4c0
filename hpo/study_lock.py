"""One study, one driver: the lock `hpo search` holds while it runs a study.

Two drivers on one study each count the budget and number trials on their own: two `dvc repro`
ran 5 Optuna trials for a budget of 4, random search ran every trial number twice, and a
second `--resume` failed the first one's running trial. So `hpo search` holds the study for
the whole run (driver, then publishing to MLflow), and a second `hpo search` of the same study
is refused at once (StudyBusyError, exit 2) with the process that holds it:

    hpo: error: runs/lr_wd: study lr_wd is being run by process 1234 on host h since
    2026-12-03 10:02:11 UTC; wait for it or stop it

What is locked, for every driver and storage:
- the study folder: fcntl.flock on runs/<study>/.driver.lock, which holds the holder's pid, host
  and start time (JSON) for that message. The kernel releases a flock when its process dies,
  so the lock of a process killed with kill -9 is taken over by the next `hpo search --resume`;
  the stale file it left is only rewritten. A holder removes the file when it is done; a taker
  checks, once it has the flock, that the file it locked is still the one at the path.
- a study on a database (--storage URL, Optuna), so that a search of the same --study from
  another folder or machine is refused too:
  PostgreSQL: a session advisory lock keyed on the study name (pg_try_advisory_lock) on a
    connection kept open for the run; the server releases it when that connection ends (the
    process died, or its machine: after TCP keepalive). The holder's pid/host/start time are
    its connection's application_name, which the refused process reads from pg_stat_activity.
  SQLite: a flock on DATABASE.<study>.hpo.lock beside the database file (SQLite databases
    are shared by processes of one machine).
  MySQL: GET_LOCK('hpo driver <study>') on a connection kept open (released when it ends); the
    message names the holder's connection id only.

`hpo worker` takes none of these: it is the way to add processes to a study on a database.
Each worker holds its own trials folder (hpo.drivers.optuna_driver.storage.lock_folder, which
uses FileLock from here), and `hpo search` on a database study holds that folder lock too.

A study folder that this lock created and in which the driver never wrote study.yaml (the
search stopped on bad input or an unreachable storage) is removed again on the way out: a
study that could not start leaves nothing behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo.records import StudySpec
from runner.errors import UserInputError
from runner.files import fsync_dir

LOCK_NAME = ".driver.lock"
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


def running_holder(study_dir: Path) -> Holder | None:
    """Who runs the study now, read without locking (`hpo status` must not disturb a start).

    The holder's file says; a process of this host that is gone left it (kill -9): None then.
    """
    try:
        holder = Holder.from_json((study_dir / LOCK_NAME).read_text())
    except (OSError, UnicodeDecodeError):
        return None
    if holder is None or holder.host != socket.gethostname():
        return holder  # another machine's process: we cannot tell whether it still runs
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # it exists, as another user
    return holder


@contextmanager
def hold_study(study: StudySpec, driver: str) -> Iterator[Holder]:
    """Hold `study` for this process (folder, and database when it lives in one); see the doc.

    Raises StudyBusyError at once when another process holds it.
    """
    me = Holder.me()
    with ExitStack() as stack:
        stack.enter_context(_study_folder(study, me))
        if driver == "optuna" and study.storage not in (None, "memory"):
            stack.enter_context(_database_lock(study, me))
        yield me


@contextmanager
def _study_folder(study: StudySpec, me: Holder) -> Iterator[None]:
    created = _make_folder(study.dir)
    path = study.dir / LOCK_NAME
    try:
        lock = FileLock.acquire(path, me)
    except BaseException:
        _remove_unstarted(study.dir, created)
        raise
    if lock is None:
        holder = FileLock.holder_of(path)
        who = holder.describe() if holder else "another process (it has not said which yet)"
        raise StudyBusyError(
            f"{study.dir}: study {study.name} is being run by {who}; wait for it or stop it"
        )
    try:
        yield
    finally:
        # removed while still locked: nobody can have started the study in it meanwhile
        _remove_unstarted(study.dir, created)
        lock.release()


def _make_folder(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; those created, innermost first."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing.append(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserInputError(f"{folder}: cannot create the study folder ({err.strerror})") from None
    if missing:
        fsync_dir(missing[-1].parent)
    return missing


def _remove_unstarted(folder: Path, created: list[Path]) -> None:
    """Remove the folders we created, unless the study started in them (study.yaml exists)."""
    if not created or (folder / "study.yaml").exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    for parent in created[1:]:
        try:
            parent.rmdir()  # only when empty: another study may have appeared in runs/ meanwhile
        except OSError:
            break


# ----------------------------------------------------------------------------- database locks


def _lock_key(study_name: str) -> int:
    """A signed 64-bit advisory lock key for the study's driver (not the suggester's ask lock)."""
    digest = hashlib.sha256(f"hpo driver {study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def without_password(url: str) -> str:
    """The URL without its password, for messages (here and in the optuna driver's storage)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


@contextmanager
def _database_lock(study: StudySpec, me: Holder) -> Iterator[None]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    where = without_password(study.storage)
    try:
        url = make_url(study.storage)
    except ArgumentError as err:
        raise UserInputError(f"optuna storage {where}: {err}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        with _sqlite_lock(study, url.database, me, where):
            yield
    elif backend == "postgresql":
        with _postgres_lock(study, me, where):
            yield
    elif backend in ("mysql", "mariadb"):
        with _mysql_lock(study, where):
            yield
    else:  # an unknown database: the folder lock is all there is
        yield


def _busy(study: StudySpec, where: str, who: str) -> StudyBusyError:
    return StudyBusyError(
        f"study {study.name} in {where} is being run by {who}; wait for it or stop it "
        f"(hpo worker --storage URL --study {study.name} adds workers to it)"
    )


@contextmanager
def _sqlite_lock(study: StudySpec, database: str | None, me: Holder, where: str) -> Iterator[None]:
    if not database or database == ":memory:" or database.startswith("file:"):
        yield  # a database of this process only (or a URI we do not parse): nothing to share
        return
    path = Path(f"{database}.{study.name}.hpo.lock")
    lock = FileLock.acquire(path, me)
    if lock is None:
        holder = FileLock.holder_of(path)
        raise _busy(study, where, holder.describe() if holder else f"the holder of {path}")
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _session_lock(
    study: StudySpec, where: str, take: Callable[[Any], str | None]
) -> Iterator[None]:
    """Hold a lock of a database session of our own for the run; take(connection) takes it.

    take returns None when it has the lock, else who holds it. The connection is in autocommit
    (never idle in a transaction for hours) and closing it ends the session and the lock.
    """
    import sqlalchemy
    import sqlalchemy.exc
    from sqlalchemy.pool import NullPool

    try:
        engine = sqlalchemy.create_engine(
            study.storage, poolclass=NullPool, isolation_level="AUTOCOMMIT"
        )
    except (ValueError, ImportError, sqlalchemy.exc.SQLAlchemyError) as err:
        raise UserInputError(f"optuna storage {where}: {_first_line(err)}") from None
    try:
        connection = engine.connect()
        try:
            who = take(connection)
        except BaseException:
            connection.close()
            raise
    except sqlalchemy.exc.SQLAlchemyError as err:
        engine.dispose()
        raise UserInputError(f"optuna storage {where}: {_first_line(err)}") from None
    try:
        if who is not None:
            raise _busy(study, where, who)
        yield
    finally:
        connection.close()
        engine.dispose()


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


APPLICATION_NAME = "hpo pid={pid} since={since} host={host}"  # PostgreSQL keeps 63 bytes


def _postgres_lock(study: StudySpec, me: Holder, where: str) -> Any:
    """pg_try_advisory_lock on the study's key; the holder's details in application_name."""
    from sqlalchemy import text

    key = _lock_key(study.name)

    def take(connection: Any) -> str | None:
        name = APPLICATION_NAME.format(pid=me.pid, since=int(me.since), host=me.host)[:63]
        connection.execute(
            text("SELECT set_config('application_name', :name, false)"), {"name": name}
        )
        if connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
            return None
        return _postgres_holder(connection, key)

    return _session_lock(study, where, take)


def _postgres_holder(connection: Any, key: int) -> str:
    """Who holds advisory lock `key`: the Holder its application_name names, else its backend."""
    import re

    from sqlalchemy import text

    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF  # pg_locks splits a bigint key into two oids
    row = connection.execute(
        text(
            "SELECT a.application_name, a.client_addr, a.pid FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid::bigint = :high AND l.objid::bigint = :low "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        {"high": unsigned >> 32, "low": unsigned & 0xFFFF_FFFF},
    ).first()
    if row is None:
        return "another process (it has just ended?)"
    found = re.fullmatch(r"hpo pid=(\d+) since=(\d+) host=(.*)", row[0] or "")
    if found:
        return Holder(int(found[1]), found[3], float(found[2])).describe()
    return f"the PostgreSQL session of backend {row[2]} from {row[1] or 'a local socket'}"


def _mysql_lock(study: StudySpec, where: str) -> Any:
    """GET_LOCK (untested here: no MySQL driver is installed); the holder is a connection id."""
    from sqlalchemy import text

    name = {"name": f"hpo driver {study.name}"[:64]}

    def take(connection: Any) -> str | None:
        if connection.execute(text("SELECT GET_LOCK(:name, 0)"), name).scalar() == 1:
            return None
        holder = connection.execute(text("SELECT IS_USED_LOCK(:name)"), name).scalar()
        return f"the MySQL connection {holder}"

    return _session_lock(study, where, take)
