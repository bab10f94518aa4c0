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

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from hpo.records import StudySpec
from hpo.study_db_lock import database_lock, without_password
from hpo.study_holder import HOLDER_WAIT_SECONDS, FileLock, Holder, StudyBusyError
from runner.errors import UserInputError
from runner.files import fsync_dir

LOCK_NAME = ".driver.lock"
# re-exported: the Optuna driver's storage and the tests import them from here
__all__ = [
    "HOLDER_WAIT_SECONDS",
    "LOCK_NAME",
    "FileLock",
    "Holder",
    "StudyBusyError",
    "hold_study",
    "running_holder",
    "without_password",
]


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
            stack.enter_context(database_lock(study, me))
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
