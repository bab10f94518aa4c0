"""A study's runs in one MLflow store, and what of them is not sent yet: the part of the
tracker that a study no process runs any more needs too (`hpo sync`).

Every update goes through a SendBuffer (hpo.tracking.buffer) to the store, from one thread: K
parallel trials never lock SQLite against each other; training never waits for the store: one
attempt of a request is bounded (hpo.tracking.mlflow_env), a store that stops answering is
waited out, at most RETRY_DELAY_MAX_S between tries, for the whole study, and what it missed
arrives once, when it is back. close() waits `close_timeout` at most (--tracking-timeout,
$HPO_TRACKING_TIMEOUT, 60 s); what is still unsent then goes to
runs/<study>/mlflow_pending.jsonl (hpo.tracking.pending), one line on stderr says how much, and
sync() sends it later, ending every run the study left RUNNING with the status its trial had
(hpo.tracking.reconcile: after a kill -9 too). mlflow.json ties the folder to the runs, and
mlflow.lock keeps sync off a study that a process still runs (hpo.tracking.study_link).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hpo.records import TrialRecord
from hpo.study import load_trials
from hpo.tracking import mlflow_env, mlflow_store, pending, reconcile
from hpo.tracking.buffer import Op, SendBuffer
from hpo.tracking.mlflow_runs import (
    STUDY,
    now_ms,
    put_trial_create,
    put_trial_end,
    reopen_parent_run,
)
from hpo.tracking.mlflow_store import MlflowSender
from hpo.tracking.pending import PENDING_FILE, PendingJournal
from hpo.tracking.publish import publish_study
from hpo.tracking.run_metrics import MetricBook
from hpo.tracking.study_link import LINK_FILE, StudyLock, read_link, write_link
from runner.errors import UserInputError

log = logging.getLogger(__name__)

RETRY_DELAY_MAX_S = 5.0  # an outage's end is noticed this soon (a refused connect costs nothing)


class StudyRuns:
    """The runs of one study in one store: the parent run, the trials' runs, the buffer that
    sends to them and the journal of what it could not; MlflowTracker feeds it a live study.

    Args: see MlflowTracker.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        flush_interval: float = 2.0,
        close_timeout: float | None = None,
        max_buffered_metrics: int = 1_000_000,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.flush_interval = flush_interval
        self.close_timeout = mlflow_env.tracking_timeout(close_timeout)
        self.max_buffered_metrics = max_buffered_metrics
        self.client: Any = None
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.buffer: SendBuffer | None = None
        self.run_ids: dict[str, str] = {}  # buffer key -> MLflow run id
        self.metrics = MetricBook()
        self._study_dir: Path | None = None
        self._tags: dict[str, str] = {}  # on the parent and every child
        self._journal: PendingJournal | None = None
        self._taken: list[str] = []  # ids of the journal entries this tracker's buffer holds
        self._study_lock = StudyLock()  # held on mlflow.lock while a study is open here
        self._parent_params: dict[str, str] = {}  # what the parent run has (params never change)
        self.delivered: bool | None = None  # whether the last close() sent everything
        self.pending_records = 0  # what it left in the journal

    def connect(self) -> None:
        """Open the store; a UserInputError, before any trial, when a server does not answer."""
        if self.client is None:
            self.client, self.tracking_uri = mlflow_store.open_client(self.tracking_uri)

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything logged so far; False when `timeout` seconds passed first."""
        return self.buffer.flush(timeout) if self.buffer is not None else True

    def close(self, timeout: float | None = None) -> None:
        """Send what is left (for up to `timeout`, else close_timeout); keep the rest on disk."""
        if self.buffer is None:
            return
        buffer, self.buffer = self.buffer, None
        timeout = self.close_timeout if timeout is None else timeout
        interrupted = False
        try:
            done = buffer.close(timeout)
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting, keep what is unsent
            done, interrupted = False, True
        left = None if done else buffer.pending()
        self.delivered = done
        self.pending_records = 0 if left is None else pending.count(left)
        try:
            self._keep_pending(left)
            self._write_link()
        except OSError as err:  # the disk refuses: say what is lost, the study itself is done
            log.error("tracking: %d unsent records are lost: %s", self.pending_records, err)
            left = None
        finally:
            self._study_lock.release()
        if left is not None:
            folder = self._study_dir
            log.warning(
                "tracking: %d records (%d run updates, %d metrics) did not reach %s in %g s; "
                "kept in %s: send them with `hpo sync %s` (or hpo search --resume)",
                self.pending_records,
                len(left["ops"]),
                self.pending_records - len(left["ops"]),
                self.tracking_uri,
                timeout,
                folder / PENDING_FILE,
                folder,
            )
        if interrupted:
            raise KeyboardInterrupt

    def sync(self, study_dir: str | Path) -> bool:
        """Send what a study that no process runs any more left unsent; whether all arrived.

        The journal's records (mlflow_pending.jsonl) go first, in order; then the runs still
        RUNNING end as their trial.json records say (hpo.tracking.reconcile: after a kill -9
        too), the parent KILLED unless the journal ends it; the study is published if its end
        could not. Waits close_timeout at most; what is left stays in the journal.
        StudyInUse when a process has the study open.
        """
        started = time.monotonic()
        self._study_dir = Path(study_dir)
        link = read_link(self._study_dir)
        if not link:
            raise UserInputError(f"{self._study_dir}: no MLflow run of this study ({LINK_FILE})")
        self.tracking_uri = self.tracking_uri or link.get("tracking_uri")
        database = mlflow_store.sqlite_path(self.tracking_uri or "")
        if database is not None and not database.is_file():  # do not make an empty store
            raise UserInputError(
                f"{self._study_dir}: its MLflow store {self.tracking_uri} is not here ("
                f"{database.resolve()}); run hpo sync in the folder the study ran in"
            )
        self._study_lock.acquire(self._study_dir, exclusive=True)
        try:
            self.connect()
            if not self._reopen_parent(link, reopen=False):
                raise UserInputError(
                    f"{self._study_dir}: no MLflow run of this study in "
                    f"{self.tracking_uri} ({LINK_FILE} missing, or its run deleted)"
                )
            self.run_ids = {**link.get("trial_runs", {}), STUDY: self.parent_run_id}
            self._open_buffer()
            saved = self._take_pending(True, link)
            publish = saved.pop("publish", False)
            self.buffer.restore(saved)
            self._reconcile(load_trials(self._study_dir), saved)
            ends_parent = any((o["run"], o["kind"]) == (STUDY, "end") for o in saved["ops"])
            parent = self.client.get_run(self.parent_run_id)
            if parent.info.status == "RUNNING" and not ends_parent:
                self.buffer.put(Op("end", STUDY, {"status": "KILLED", "end_time": now_ms()}))
            left_s = max(self.close_timeout - (time.monotonic() - started), 0.0)
            if publish and self.buffer.flush(left_s):
                publish = not publish_study(self.client, self.parent_run_id, self._study_dir)
        except BaseException:
            self._study_lock.release()
            raise
        self.close(max(self.close_timeout - (time.monotonic() - started), 0.0))
        if publish:  # not published (not everything arrived, or it failed): the next sync does
            PendingJournal(self._study_dir).append({"publish": True})
        return bool(self.delivered) and not publish

    def reconcile(self, study_dir: str | Path) -> None:
        """End the runs a study left RUNNING when no process runs it any more (sync)."""
        self.sync(study_dir)

    # ------------------------------------------------------------------ runs

    def _reopen_parent(self, link: Mapping[str, Any] | None, reopen: bool = True) -> bool:
        """Whether mlflow.json names a live parent run in this store; reopened if it ended."""
        run = reopen_parent_run(self.client, link, self.tracking_uri, reopen)
        if run is None:
            return False
        self.parent_run_id, self.experiment_id = run.info.run_id, run.info.experiment_id
        self._parent_params = dict(run.data.params)
        return True

    def _open_buffer(self) -> None:
        sender = MlflowSender(self.client, self.experiment_id, self.parent_run_id)
        self.buffer = SendBuffer(
            sender,
            self.run_ids,
            flush_interval=self.flush_interval,
            max_metrics=self.max_buffered_metrics,
            max_retry_delay=RETRY_DELAY_MAX_S,
            on_sent=self._sent,
        )

    def _reconcile(self, records: list[TrialRecord], saved: Mapping[str, Any]) -> None:
        """End RUNNING children, make missing ones; none that `saved` (journal) creates or ends."""
        children = mlflow_store.child_runs(self.client, self.experiment_id, self.parent_run_id)
        self.run_ids.update({k: run.info.run_id for k, run in children.items() if k.isdigit()})
        ending = {o["run"] for o in saved.get("ops", ()) if o["kind"] == "end"}
        creating = {o["run"] for o in saved.get("ops", ()) if o["kind"] == "create"}
        statuses = {key: run.info.status for key, run in children.items() if key not in ending}
        known = set(self.run_ids) | creating | ending
        to_end, to_make = reconcile.plan(statuses, records, known)
        for record in to_make:
            self._put_create(
                str(record.number),
                {"hpo.backfilled": "true"},
                int(record.started * 1000) or now_ms(),
                record.params,
            )
        for record in (*to_end, *to_make):
            put_trial_end(
                self.buffer, str(record.number), record, {}, self.metrics, self._study_dir
            )

    def _put_create(
        self, run: str, tags: Mapping[str, str], start_ms: int, params: Mapping[str, Any]
    ) -> None:
        tags = {**self._tags, "mlflow.parentRunId": self.parent_run_id, "hpo.trial": run, **tags}
        put_trial_create(self.buffer, run, tags, start_ms, params, self._study_dir)

    # ------------------------------------------------------------------ the journal, the link

    def _take_pending(self, same_runs: bool, link: Mapping[str, Any] | None) -> dict[str, Any]:
        """What earlier commands left in the journal (empty if none); settled at close()."""
        self._journal = PendingJournal(self._study_dir)
        if not self._journal.exists():
            return pending.merge(())
        saved, self._taken = self._journal.take()
        if not same_runs:  # its run ids are in another store: sent here they would be wrong
            log.warning(
                "tracking: %s holds updates for the runs in %s, not %s; they are dropped",
                self._journal.path,
                (link or {}).get("tracking_uri"),
                self.tracking_uri,
            )
            return pending.merge(())
        return saved

    def _keep_pending(self, left: dict[str, Any] | None) -> None:
        """Put what close() could not send in the journal (replacing what this buffer took)."""
        journal = self._journal or PendingJournal(self._study_dir)
        if self._taken:
            journal.settle(self._taken, left)
            self._taken = []
        elif left is not None:
            journal.append(left)

    def _unlock_study(self) -> None:
        self._study_lock.release()

    def _sent(self, op: Op) -> None:
        if op.kind == "create":
            self._write_link()

    def _write_link(self) -> None:
        if self._study_dir is None or self.parent_run_id is None:
            return
        trial_runs = {k: v for k, v in dict(self.run_ids).items() if k != STUDY}
        write_link(
            self._study_dir, self.tracking_uri, self.experiment_id, self.parent_run_id, trial_runs
        )
