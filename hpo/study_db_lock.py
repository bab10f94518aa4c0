"""The lock on a study that lives in a database (--storage URL, Optuna), so that a search of the
same --study from another folder or machine is refused too (hpo.study_lock's doc says how each
database is locked: PostgreSQL advisory lock, SQLite lock file, MySQL GET_LOCK).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hpo.records import StudySpec
from hpo.study_holder import FileLock, Holder, StudyBusyError
from runner.errors import UserInputError


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
def database_lock(study: StudySpec, me: Holder) -> Iterator[None]:
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
