"""Where an Optuna study lives: a journal file, memory, or a database that workers share.

On a database a running trial records a heartbeat (Heartbeat), so that a worker that asks can
fail the trials of workers that died; each process holds a lock on its own trials folder
(lock_folder). The study as a whole is held by its `hpo search` (hpo.study_lock).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import Any

from hpo.drivers.base import StudySpec
from hpo.space import SearchSpace
from hpo.study_lock import FileLock, Holder, without_password
from runner.errors import UserInputError
from runner.files import append_whole, storage_error

RECIPE = "hpo"  # the study's user attribute that holds recipe.study_recipe()

log = logging.getLogger(__name__)


def on_database(study: StudySpec) -> bool:
    """Whether the study lives in a database (a URL), not a journal file or memory."""
    return study.storage not in (None, "memory")


def open_storage(study: StudySpec, space: SearchSpace) -> Any:
    """The study's storage: its journal file, None for memory, or its database with heartbeats."""
    if study.storage is None:
        from optuna.storages import JournalStorage

        journal = study.dir / "optuna.journal"
        # A run killed while writing left Optuna's journal lock: Optuna would wait 30 s. Safe
        # to remove because `hpo search` holds the study (hpo.study_lock): no other driver
        # writes this journal.
        if study.resume:
            journal.with_name(journal.name + ".lock").unlink(missing_ok=True)
        return JournalStorage(journal_backend(journal))
    if study.storage == "memory":
        return None
    import optuna

    options = space.driver_options
    retry = None
    if options["retries"]:
        with warnings.catch_warnings():  # "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=options["retries"])
    return open_database(
        study.storage,
        heartbeat_interval=options["heartbeat_interval"],
        grace_period=options["grace_period"],
        heartbeat_stale_trial_callback=retry,
    )


def journal_backend(path: Path) -> Any:
    """Optuna's journal file backend, whose appends a full disk cannot leave half-written.

    Optuna appends a line per change; a write that fails midway (no space left) leaves part of
    a line, and the next append would follow it on the same line: a journal that no run can
    read again. Here the file is cut back to its size before the failed append, and the error
    is a StorageError naming the journal (one line from the CLI).
    """
    from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

    class CarefulJournal(JournalFileBackend):
        def __init__(self, file: str) -> None:
            self._hpo_lock, self._hpo_path = JournalFileSymlinkLock(file), file
            try:
                super().__init__(file, lock_obj=self._hpo_lock)
            except OSError as err:
                raise storage_error(err, file) from err

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            lines = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
            data = lines.encode("utf-8")
            try:
                self._hpo_lock.acquire()  # a symlink beside the journal
            except OSError as err:
                raise storage_error(err, f"{self._hpo_path}.lock") from err
            try:
                fd = os.open(self._hpo_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            except OSError as err:
                self._hpo_lock.release()
                raise storage_error(err, self._hpo_path) from err
            try:
                append_whole(fd, data, self._hpo_path)  # whole, or cut back: never half a line
                try:
                    os.fsync(fd)
                except OSError as err:
                    raise storage_error(err, self._hpo_path) from err
            finally:
                os.close(fd)
                self._hpo_lock.release()

    return CarefulJournal(str(path))


def open_database(url: str, **heartbeat: Any) -> Any:
    """An Optuna RDBStorage on `url`; a UserInputError that says why when it cannot open."""
    import optuna
    import sqlalchemy.exc

    try:
        with warnings.catch_warnings():  # heartbeat_interval: "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # pre-ping: a worker outlives the database's idle timeouts and restarts
            return optuna.storages.RDBStorage(
                url, engine_kwargs={"pool_pre_ping": True}, **heartbeat
            )
    except (ValueError, ImportError, sqlalchemy.exc.SQLAlchemyError) as err:
        hint = (
            " (PostgreSQL needs psycopg: pip install 'psycopg[binary]')"
            if isinstance(err, ImportError) and url.startswith("postgres")
            else ""
        )
        raise UserInputError(f"optuna storage {without_password(url)}: {err}{hint}") from None


def lock_folder(study: StudySpec) -> FileLock:
    """Hold runs/<study>/.lock while this process runs: its trials folder is its own.

    `hpo worker` and `hpo search` on a database both take it, so a worker cannot share a
    search's folder; the study itself is held by `hpo search` alone (hpo.study_lock).
    """
    path = study.dir / ".lock"
    lock = FileLock.acquire(path, Holder.me())
    if lock is None:
        holder = FileLock.holder_of(path)
        who = f" ({holder.describe()})" if holder else ""
        raise UserInputError(
            f"{study.dir}: another hpo process on this machine{who} runs study {study.name} "
            "in this folder; give each worker its own folder (--runs DIR), or one --parallel K"
        )
    return lock


class Heartbeat:
    """Records a running trial's heartbeat now, then every heartbeat_interval seconds until stop()."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        storage.record_heartbeat(trial_id)  # at once: a trial with no heartbeat is never failed
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=_beat,
            args=(storage, trial_id, storage.get_heartbeat_interval(), self._stopped),
            name=f"hpo-heartbeat-{trial_id}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def _beat(storage: Any, trial_id: int, interval: float, stopped: threading.Event) -> None:
    while not stopped.wait(interval):
        try:
            storage.record_heartbeat(trial_id)
        except Exception as err:  # noqa: BLE001 (the database is away: keep trying, the trial runs on)
            log.warning("heartbeat of trial id %d not recorded: %s", trial_id, err)
