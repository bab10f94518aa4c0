"""MLflow tracking of a study: a parent run per study, a nested child run per trial.

    >>> tracker = MlflowTracker()     # $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db right here
    >>> get_driver("optuna").run(space, study, objective, tracker)
    $ mlflow ui                       # in the same folder: the study, its trials side by side

The MLflow experiment is named after the experiment config (its `name`, else its file stem;
the space's name for a plain-function objective). The parent run, named after the study, holds
the study settings as params and, at the end, the best trial's params as params
(best.<param>, e.g. best.train.learning_rate; also as tags hpo.best.<param>); the space file,
experiment config and study.yaml, and at the end summary.json and best_params.yaml, as
artifacts; study-level metrics, all named study_* so that no chart mixes them with a trial's
metric of the same name: each complete trial's value and the best so far by trial number
(study_trial_<metric>, study_best_<metric>: an optimization history), counts by state
(study_n_complete, study_n_pruned, study_n_failed) and study_wall_seconds; tag hpo.searched
lists the searched params; and where the study comes from: mlflow.source.git.commit and the
data's DVC md5 (hpo.data_md5; absent outside a git repository, or when DVC does not track the
data). A child run (tag mlflow.parentRunId) holds the searched params (logged first, when it
starts) and the trial's resolved config.yaml flattened (values as the config file spells them:
1e-05, true, null; its output_dir is tag hpo.trial_dir instead, so that "show diff only" in
MLflow's compare view shows the searched params), every reported metric by step, best_<m> and
final_<m> of the validation metrics (val_*, and the objectives), duration_s and steps, and tags:
hpo.trial, hpo.trial_dir, hpo.state, hpo.reason, hpo.driver, hpo.sampler, hpo.pruner. It ends
FINISHED (complete, and pruned: nothing went wrong, tag hpo.state=pruned tells them apart),
FAILED (failed) or KILLED (interrupted by Ctrl-C: --resume continues it), never RUNNING.

The best params are MLflow params, which cannot change once logged: a resumed study whose best
trial changed keeps the first best.* values it logged where they differ (a warning says so) and
the current ones in the hpo.best.* tags and best_params.yaml.

Every call after start_study returns at once: runs, params, tags and metrics go through a
SendBuffer to the store, metrics in batches of at most 1000, from one thread. One writer, so K
parallel trials never lock SQLite against each other; a store that stops answering is waited
out, and what it missed arrives once, when it is back (hpo.tracking.buffer).

runs/<study>/mlflow.json links the study to its runs. On --resume the parent run is reused and
the runs a kill -9 left RUNNING are reconciled with the trial.json records (hpo.tracking.
reconcile).

Tracking outages. Training never waits for the store: one attempt of a request is bounded
(hpo.tracking.mlflow_env) and the buffer's thread retries it, at most RETRY_DELAY_MAX_S apart,
for the whole study, so what an outage held back arrives as soon as the store is back. The end
of a study waits at most `close_timeout` (--tracking-timeout, $HPO_TRACKING_TIMEOUT, 60 s);
what is still unsent then is appended to runs/<study>/mlflow_pending.jsonl (hpo.tracking.
pending), one line on stderr says how much, and `hpo sync STUDY` or `hpo search --resume`
sends it later, ending every run the study left RUNNING with the status its trial had. While a
tracker has a study open it holds a shared lock on runs/<study>/mlflow.lock, so `hpo sync`
never ends the runs of a study that is still running.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hpo.methods import search_method
from hpo.study import StudyResult, load_trials
from hpo.tracking import mlflow_env, mlflow_store, pending, provenance, reconcile
from hpo.tracking.buffer import Op, Row, SendBuffer
from hpo.tracking.mlflow_store import MlflowSender, as_text, clean_key, flatten, param_values
from hpo.tracking.pending import PENDING_FILE, PendingJournal
from runner.direction import lower_is_better
from runner.errors import UserInputError

if TYPE_CHECKING:
    from hpo.records import StudySpec, TrialRecord
    from hpo.space import SearchSpace

log = logging.getLogger(__name__)

STUDY = "study"  # the buffer's key of the parent run; a trial's is str(number)
# a pruned trial ended as the pruner meant it to: FINISHED (tag hpo.state=pruned), not a red
# KILLED; an interrupted trial is KILLED (stopped by the user, continued by --resume)
RUN_STATUS = {
    "complete": "FINISHED",
    "pruned": "FINISHED",
    "failed": "FAILED",
    "interrupted": "KILLED",
}
LINK_FILE, LOCK_FILE = "mlflow.json", "mlflow.lock"
STUDY_PREFIX = "study_"  # of the parent run's metrics: never the name of a trial's metric
RETRY_DELAY_MAX_S = 5.0  # an outage's end is noticed this soon (a refused connect costs nothing)
__all__ = ["PENDING_FILE", "MlflowTracker", "StudyInUse"]


class StudyInUse(UserInputError):
    """Another process tracks this study now (it sends its own records)."""


class MlflowTracker:
    """A Tracker (hpo.drivers.base) that records a study in MLflow; see the module doc.

    Args:
        tracking_uri: None: $MLFLOW_TRACKING_URI, else MLflow's default, sqlite:///mlflow.db in
            the current folder.
        experiment_name: None: named after the experiment config (see the module doc).
        system_metrics: log CPU, memory, disk, network and GPU readings into each trial's run.
        system_metrics_interval: seconds between readings (MLflow's default, 10).
        flush_interval: at most this many seconds between a metric's report and its sending.
        close_timeout: how long the end of a study waits for a store that does not answer
            (None: $HPO_TRACKING_TIMEOUT, else 60 s; hpo.tracking.mlflow_env.tracking_timeout).
        max_buffered_metrics: how many unsent metrics an outage may hold in memory.
    """

    def __init__(
        self,
        tracking_uri: str | None = None,
        experiment_name: str | None = None,
        *,
        system_metrics: bool = True,
        system_metrics_interval: float = 10.0,
        flush_interval: float = 2.0,
        close_timeout: float | None = None,
        max_buffered_metrics: int = 1_000_000,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment_name
        self.system_metrics, self.system_metrics_interval = system_metrics, system_metrics_interval
        self.flush_interval = flush_interval
        self.close_timeout = mlflow_env.tracking_timeout(close_timeout)
        self.max_buffered_metrics = max_buffered_metrics
        self.client: Any = None
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.buffer: SendBuffer | None = None
        self.run_ids: dict[str, str] = {}  # buffer key -> MLflow run id
        self._sampler: Any = None
        self._study_dir: Path | None = None
        self._space: SearchSpace | None = None
        self._tags: dict[str, str] = {}  # on the parent and every child
        self._evals: dict[str, dict[str, tuple[float, float]]] = {}  # trial -> metric -> best, last
        self._counts = {"complete": 0, "pruned": 0, "failed": 0}
        self._best: float | None = None
        self._keys: dict[str, tuple[str, bool]] = {}  # metric -> MLflow name, is validation
        self._journal: PendingJournal | None = None
        self._taken: list[str] = []  # ids of the journal entries this tracker's buffer holds
        self._study_lock: Any = None  # the open mlflow.lock while a study is open here
        self._parent_params: dict[str, str] = {}  # what the parent run has (params never change)
        self.delivered: bool | None = None  # whether the last close() sent everything
        self.pending_records = 0  # what it left in the journal

    def connect(self) -> None:
        """Open the store; a UserInputError, before any trial, when a server does not answer."""
        if self.client is None:
            self.client, self.tracking_uri = mlflow_store.open_client(self.tracking_uri)

    # ------------------------------------------------------------------ the Tracker protocol

    def start_study(self, space: SearchSpace, study: StudySpec, driver: str) -> None:
        self.connect()
        self._space, self._study_dir = space, Path(study.dir)
        method = search_method(space, study)  # auto resolved, as summary.json says it
        self._tags = {
            "mlflow.user": getpass.getuser(),
            "mlflow.source.name": "hpo search",
            "mlflow.source.type": "LOCAL",
            "hpo.study": study.name,
            "hpo.driver": driver,
            "hpo.sampler": method["sampler"],
            "hpo.pruner": method["pruner"],
            **provenance.provenance_tags(space.experiment, space.source),
        }
        link = _read_json(self._study_dir / LINK_FILE)
        resumed = self._reopen_parent(link)
        if not resumed:
            name = self.experiment_name or provenance.experiment_name(
                space.experiment, space.source, space.name
            )
            self.experiment_id = mlflow_store.experiment_id(self.client, name)
            self._create_parent(space, study, driver)
        self.run_ids = {
            **(link.get("trial_runs", {}) if resumed else {}),
            STUDY: self.parent_run_id,
        }
        self._lock_study(exclusive=False)
        self._write_link()
        self._open_buffer()
        saved = self._take_pending(resumed, link)
        if resumed:  # the study goes on: its run ends when this study ends, not as it did then
            saved["ops"] = [o for o in saved["ops"] if (o["run"], o["kind"]) != (STUDY, "end")]
            self.buffer.restore(saved)
        searched = ",".join(p.name for p in space.searched)
        self.buffer.put(
            Op(
                "tags",
                STUDY,
                {"tags": {**self._tags, "hpo.role": "study", "hpo.searched": searched}},
            )
        )
        for artifact, path in provenance.study_files(
            space.experiment, space.source, self._study_dir
        ):
            self._put_text(STUDY, path, artifact)
        records = load_trials(self._study_dir)
        for record in records:
            self._count(record)
        if resumed:
            self._reconcile(records, saved)
        log.info(
            "MLflow: study %s is run %s in %s%s",
            study.name,
            self.parent_run_id,
            self.tracking_uri,
            _ui_hint(self.tracking_uri),
        )
        if self.system_metrics:
            from hpo.tracking.mlflow_system_metrics import SystemMetricsSampler

            self._sampler = SystemMetricsSampler(
                self._emit_system, self.system_metrics_interval, tracking_uri=self.tracking_uri
            )

    def start_trial(self, number: int, params: Mapping[str, Any]) -> None:
        run = str(number)
        self._put_create(run, {"hpo.state": "running"}, _now_ms(), params)
        self._evals[run] = {}
        if self._sampler is not None:
            self._sampler.add(run)

    def log_metrics(self, number: int, step: int, metrics: Mapping[str, float]) -> None:
        run, now, step = str(number), _now_ms(), int(step)
        evals = self._evals.setdefault(run, {})
        rows: list[Row] = []
        for key, value in metrics.items():
            known = self._keys.get(key) or self._learn(key)
            if type(value) is not float:  # noqa: E721 (the common case first: a plain float)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                value = float(value)
            rows.append((known[0], value, now, step))
            if known[1] and math.isfinite(value):
                best = evals.get(key, (value, value))[0]
                evals[key] = (value if self._better(key, value, best) else best, value)
        self.buffer.put_metrics(run, rows)

    def end_trial(self, record: TrialRecord) -> None:
        run = str(record.number)
        if run not in self._evals:  # it never started here: give it its run now
            self.start_trial(record.number, record.params)
        if self._sampler is not None:
            self._sampler.remove(run)
        self._put_end(run, record, self._evals.pop(run, {}))
        self._count(record)
        objective, step, now = self._space.objective, record.number, _now_ms()
        rows: list[Row] = [
            (f"{STUDY_PREFIX}n_{state}", float(n), now, step) for state, n in self._counts.items()
        ]
        if record.state == "complete" and record.value is not None:
            rows.append(
                (self._key(f"{STUDY_PREFIX}trial_{objective.metric}"), record.value, now, step)
            )
        if self._best is not None:
            rows.append(
                (self._key(f"{STUDY_PREFIX}best_{objective.metric}"), self._best, now, step)
            )
        self.buffer.put_metrics(STUDY, rows)

    def end_study(self, result: StudyResult) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        best, now = result.best, _now_ms()
        tags = {"hpo.stop_reason": result.stop_reason}
        if best is not None:
            tags["hpo.best_trial"] = str(best.number)
            tags.update({clean_key(f"hpo.best.{k}"): as_text(v) for k, v in best.params.items()})
            self._put_best_params(best.params)
        self.buffer.put(Op("tags", STUDY, {"tags": tags}))
        step = max((t.number for t in result.trials), default=0)
        prefix = STUDY_PREFIX
        rows: list[Row] = [
            (f"{prefix}n_{s}", float(result.count(s)), now, step) for s in self._counts
        ]
        rows.append((f"{prefix}wall_seconds", float(result.wall_seconds), now, step))
        for objective, value in zip(result.objectives, best.values if best else (), strict=False):
            rows.append((self._key(f"{prefix}best_{objective.metric}"), float(value), now, step))
        self.buffer.put_metrics(STUDY, rows)
        for name in ("summary.json", "best_params.yaml"):
            self._put_text(STUDY, result.dir / name, name)
        # a study that stopped on failures or on a write error (disk full) did not finish
        status = {"interrupted": "KILLED", "failures": "FAILED", "storage": "FAILED"}.get(
            result.stop_reason, "FINISHED"
        )
        self.buffer.put(Op("end", STUDY, {"status": status, "end_time": now}))
        # after Ctrl-C, a store that does not answer keeps the user waiting 10 s at most
        self.close(min(self.close_timeout, 10.0) if status == "KILLED" else self.close_timeout)

    # ------------------------------------------------------------------ beyond the protocol

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything logged so far; False when `timeout` seconds passed first."""
        return self.buffer.flush(timeout) if self.buffer is not None else True

    def close(self, timeout: float | None = None) -> None:
        """Send what is left (for up to `timeout`, else close_timeout); keep the rest on disk."""
        if self._sampler is not None:
            self._sampler.stop()
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
            self._unlock_study()
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

    def publish(self, study_dir: str | Path) -> bool:
        """Plots and best model on the study's run (hpo.tracking.publish), if the study's
        records all arrived; else a mark in the journal, and `hpo sync` publishes."""
        from hpo.tracking.publish import publish_study

        if self.delivered is False:
            PendingJournal(study_dir).append({"publish": True})
            log.warning("tracking: the study's plots and best model are published by hpo sync")
            return False
        return publish_study(self.client, self.parent_run_id, study_dir)

    def sync(self, study_dir: str | Path) -> bool:
        """Send what a study that no process runs any more left unsent; whether all arrived.

        The journal's records (mlflow_pending.jsonl) go first, in order; then the runs still
        RUNNING end as their trial.json records say (hpo.tracking.reconcile: after a kill -9
        too), the parent KILLED unless the journal ends it; the study is published if its end
        could not. Waits close_timeout at most; what is left stays in the journal.
        StudyInUse when a process has the study open.
        """
        from hpo.study import load_trials

        started = time.monotonic()
        self._study_dir = Path(study_dir)
        link = _read_json(self._study_dir / LINK_FILE)
        if not link:
            raise UserInputError(f"{self._study_dir}: no MLflow run of this study ({LINK_FILE})")
        self.tracking_uri = self.tracking_uri or link.get("tracking_uri")
        database = mlflow_store.sqlite_path(self.tracking_uri or "")
        if database is not None and not database.is_file():  # do not make an empty store
            raise UserInputError(
                f"{self._study_dir}: its MLflow store {self.tracking_uri} is not here ("
                f"{database.resolve()}); run hpo sync in the folder the study ran in"
            )
        self._lock_study(exclusive=True)
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
                self.buffer.put(Op("end", STUDY, {"status": "KILLED", "end_time": _now_ms()}))
            left_s = max(self.close_timeout - (time.monotonic() - started), 0.0)
            if publish and self.buffer.flush(left_s):
                publish = not self._publish_now()
        except BaseException:
            self._unlock_study()
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
        if not link or link.get("tracking_uri") != self.tracking_uri:
            return False
        run = mlflow_store.live_run(self.client, link["parent_run_id"])
        if run is None:
            return False
        if reopen and run.info.status != "RUNNING":
            self.client.update_run(run.info.run_id, status="RUNNING")
        self.parent_run_id, self.experiment_id = run.info.run_id, run.info.experiment_id
        self._parent_params = dict(run.data.params)
        return True

    def _create_parent(self, space: SearchSpace, study: StudySpec, driver: str) -> None:
        tags = {**self._tags, "hpo.role": "study", "hpo.study_dir": str(self._study_dir.resolve())}
        run = self.client.create_run(self.experiment_id, run_name=study.name, tags=tags)
        self.parent_run_id = run.info.run_id
        settings = {
            "study": study.name,
            "driver": driver,
            "parallel": study.parallel,
            "storage": study.storage,
            "space": space.to_dict(),
        }
        self._parent_params = param_values(flatten(settings))
        MlflowSender(self.client, self.experiment_id, self.parent_run_id).log_params(
            self.parent_run_id, self._parent_params
        )

    def _put_best_params(self, params: Mapping[str, Any]) -> None:
        """The best trial's params as the parent's params best.<key>; those a resumed study
        logged before with another value stay as they were (MLflow params never change)."""
        new, kept = {}, []
        for key, value in param_values({f"best.{k}": v for k, v in params.items()}).items():
            logged = self._parent_params.get(key)
            if logged is None:
                new[key] = value
            elif logged != value:
                kept.append(key)
        if kept:
            log.warning(
                "tracking: the study's run keeps its earlier %s (MLflow params cannot change); "
                "the new best is in its hpo.best.* tags",
                ", ".join(kept),
            )
        if new:
            self._parent_params.update(new)
            self.buffer.put(Op("params", STUDY, {"params": new}))

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

    # ------------------------------------------------------------------ the journal, the lock

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

    def _lock_study(self, exclusive: bool) -> None:
        """Shared while a study runs (workers of one study share it); exclusive for sync."""
        path = self._study_dir / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_SH)
        except BlockingIOError:
            handle.close()
            raise StudyInUse(
                f"{self._study_dir}: the study is running (another process tracks it and "
                "sends its own records); sync it after it ends"
            ) from None
        self._study_lock = handle

    def _unlock_study(self) -> None:
        if self._study_lock is not None:
            self._study_lock.close()
            self._study_lock = None

    def _publish_now(self) -> bool:
        from hpo.tracking.publish import publish_study

        return publish_study(self.client, self.parent_run_id, self._study_dir)

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
                int(record.started * 1000) or _now_ms(),
                record.params,
            )
        for record in (*to_end, *to_make):
            self._put_end(str(record.number), record, {})

    def _put_create(
        self, run: str, tags: Mapping[str, str], start_ms: int, params: Mapping[str, Any]
    ) -> None:
        tags = {**self._tags, "mlflow.parentRunId": self.parent_run_id, "hpo.trial": run, **tags}
        if self._study_dir is not None:
            from hpo.study import trial_dir

            tags["hpo.trial_dir"] = str(trial_dir(self._study_dir, int(run)).resolve())
        self.buffer.put(
            Op("create", run, {"name": f"trial {run}", "tags": tags, "start_time": start_ms})
        )
        self.buffer.put(Op("params", run, {"params": param_values(params)}))

    def _put_end(self, run: str, record: TrialRecord, evals: Mapping[str, tuple]) -> None:
        from hpo.study import INTERRUPTED

        tags = {"hpo.state": record.state}
        if record.reason:
            tags["hpo.reason"] = as_text(record.reason)
        self.buffer.put(Op("tags", run, {"tags": tags}))
        config = self._config_params(record)
        if config:
            self.buffer.put(Op("params", run, {"params": config}))
        summary = {"duration_s": record.duration, "steps": record.steps}
        for key, (best, last) in evals.items():
            summary.update({f"best_{key}": best, f"final_{key}": last})
        if record.state == "complete" and self._space is not None:  # the trial's own values
            for objective, value in zip(self._space.objectives, record.values or (), strict=False):
                summary[f"best_{objective.metric}"] = value
        now = _now_ms()
        self.buffer.put_metrics(
            run, [(self._key(k), float(v), now, record.steps) for k, v in summary.items()]
        )
        status = (
            "KILLED" if record.reason == INTERRUPTED else RUN_STATUS.get(record.state, "FAILED")
        )
        end = int((record.started + record.duration) * 1000) if record.started else now
        self.buffer.put(Op("end", run, {"status": status, "end_time": end}))

    def _config_params(self, record: TrialRecord) -> dict[str, str]:
        """The trial's resolved config.yaml (written by the runner), flattened, minus the params."""
        from hpo.study import trial_dir

        path = trial_dir(self._study_dir, record.number) / "config.yaml"
        try:
            raw = yaml.safe_load(path.read_text()) if path.is_file() else None
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return {}
        if not isinstance(raw, dict):
            return {}
        # output_dir differs in every trial: it is tag hpo.trial_dir, so that MLflow's "show
        # diff only" shows the searched params alone
        skip = {*record.params, "output_dir"}
        return param_values({k: v for k, v in flatten(raw).items() if k not in skip})

    # ------------------------------------------------------------------ small things

    def _count(self, record: TrialRecord) -> None:
        if record.state in self._counts:
            self._counts[record.state] += 1
        value, objective = record.value, self._space.objective
        if record.state == "complete" and value is not None and math.isfinite(value):
            if self._best is None or objective.is_better(value, self._best):
                self._best = value

    def _put_text(self, run: str, path: Path, artifact: str) -> None:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            return
        self.buffer.put(Op("text", run, {"text": text, "artifact_file": artifact}))

    def _emit_system(self, run: str, metrics: Mapping[str, float], step: int) -> None:
        buffer, now = self.buffer, _now_ms()
        if buffer is not None:
            buffer.put_metrics(run, [(self._key(k), v, now, step) for k, v in metrics.items()])

    def _sent(self, op: Op) -> None:
        if op.kind == "create":
            self._write_link()

    def _write_link(self) -> None:
        if self._study_dir is None or self.parent_run_id is None:
            return
        _write_json(
            self._study_dir / LINK_FILE,
            {
                "tracking_uri": self.tracking_uri,
                "experiment_id": self.experiment_id,
                "parent_run_id": self.parent_run_id,
                "trial_runs": {k: v for k, v in dict(self.run_ids).items() if k != STUDY},
            },
        )

    def _better(self, key: str, value: float, than: float) -> bool:
        for objective in self._space.objectives if self._space else ():
            if objective.metric == key:
                return objective.is_better(value, than)
        return value < than if lower_is_better(key) else value > than

    def _key(self, key: str) -> str:
        return (self._keys.get(key) or self._learn(key))[0]

    def _learn(self, key: str) -> tuple[str, bool]:
        """A metric's MLflow name, and whether it is a validation metric (val_*, an objective)."""
        objectives = self._space.objectives if self._space else ()
        evaluated = key.startswith("val_") or any(o.metric == key for o in objectives)
        known = self._keys[key] = (clean_key(key), evaluated)
        return known


def trial_run_link(study_dir: str | Path, number: int) -> dict[str, str]:
    """Where trial `number`'s MLflow run is, from runs/<study>/mlflow.json: mlflow_run_id and,
    for a server, mlflow_run_url (what optuna-dashboard shows to link a trial back); empty
    when the study is not tracked or its run is not created yet (the store is down)."""
    link = _read_json(Path(study_dir) / LINK_FILE) or {}
    run_id = (link.get("trial_runs") or {}).get(str(number))
    if not isinstance(run_id, str):
        return {}
    found = {"mlflow_run_id": run_id}
    uri, experiment = link.get("tracking_uri") or "", link.get("experiment_id")
    if uri.startswith(("http://", "https://")) and experiment:
        found["mlflow_run_url"] = f"{uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"
    return found


def _ui_hint(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return ""
    if uri == f"sqlite:///{Path('mlflow.db').resolve()}":
        return "; see it with: mlflow ui"
    return f"; see it with: mlflow ui --backend-store-uri {uri}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


_write_lock = threading.Lock()  # the sending thread and the driver's both write mlflow.json


def _write_json(path: Path, data: Any) -> None:
    from hpo.study import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    with _write_lock:  # json.dumps writes NaN, which pending metrics may hold
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
