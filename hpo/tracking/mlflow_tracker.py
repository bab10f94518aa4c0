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
buffer to the store, from one thread; a store that stops answering is waited out, and what the
end of the study could not send is kept on disk for `hpo sync` (hpo.tracking.study_runs).
runs/<study>/mlflow.json links the study to its runs; on --resume the parent run is reused and
the runs a kill -9 left RUNNING are reconciled with the trial.json records.

The parts: mlflow_runs (how the parent and child runs start and end), run_metrics (metric
names, best_/final_ values, the study_* metrics), study_runs (the buffer, the journal, sync),
study_link (mlflow.json, mlflow.lock), mlflow_store (the client and its requests).
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.methods import search_method
from hpo.study import StudyResult, load_trials
from hpo.tracking import mlflow_store, provenance
from hpo.tracking.buffer import Op
from hpo.tracking.mlflow_runs import (
    RUN_STATUS,
    STUDY,
    create_parent_run,
    new_best_params,
    now_ms,
    put_trial_end,
    study_status,
)
from hpo.tracking.mlflow_store import as_text, clean_key
from hpo.tracking.mlflow_system_metrics import SystemMetricsSampler
from hpo.tracking.pending import PENDING_FILE, PendingJournal
from hpo.tracking.publish import publish_study
from hpo.tracking.run_metrics import STUDY_PREFIX
from hpo.tracking.study_link import LINK_FILE, LOCK_FILE, StudyInUse, read_link, trial_run_link
from hpo.tracking.study_runs import RETRY_DELAY_MAX_S, StudyRuns

if TYPE_CHECKING:
    from hpo.records import StudySpec, TrialRecord
    from hpo.space import SearchSpace

log = logging.getLogger(__name__)

# re-exported: defined here before the split, and train tracking and the Optuna driver import
# RUN_STATUS and trial_run_link from here
__all__ = [
    "LINK_FILE",
    "LOCK_FILE",
    "PENDING_FILE",
    "RETRY_DELAY_MAX_S",
    "RUN_STATUS",
    "STUDY",
    "STUDY_PREFIX",
    "MlflowTracker",
    "StudyInUse",
    "trial_run_link",
]


class MlflowTracker(StudyRuns):
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
        super().__init__(
            tracking_uri,
            flush_interval=flush_interval,
            close_timeout=close_timeout,
            max_buffered_metrics=max_buffered_metrics,
        )
        self.experiment_name = experiment_name
        self.system_metrics, self.system_metrics_interval = system_metrics, system_metrics_interval
        self._sampler: SystemMetricsSampler | None = None

    # ------------------------------------------------------------------ the Tracker protocol

    def start_study(self, space: SearchSpace, study: StudySpec, driver: str) -> None:
        self.connect()
        self._study_dir = Path(study.dir)
        self.metrics.space = space
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
        link = read_link(self._study_dir)
        resumed = self._reopen_parent(link)
        if not resumed:
            name = self.experiment_name or provenance.experiment_name(
                space.experiment, space.source, space.name
            )
            self.experiment_id = mlflow_store.experiment_id(self.client, name)
            tags = {**self._tags, "hpo.role": "study"}
            tags["hpo.study_dir"] = str(self._study_dir.resolve())
            self.parent_run_id, self._parent_params = create_parent_run(
                self.client, self.experiment_id, space, study, driver, tags
            )
        self.run_ids = {
            **(link.get("trial_runs", {}) if resumed else {}),
            STUDY: self.parent_run_id,
        }
        self._study_lock.acquire(self._study_dir, exclusive=False)
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
            self.metrics.count(record)
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
            self._sampler = SystemMetricsSampler(
                self._emit_system, self.system_metrics_interval, tracking_uri=self.tracking_uri
            )

    def start_trial(self, number: int, params: Mapping[str, Any]) -> None:
        run = str(number)
        self._put_create(run, {"hpo.state": "running"}, now_ms(), params)
        self.metrics.open_trial(run)
        if self._sampler is not None:
            self._sampler.add(run)

    def log_metrics(self, number: int, step: int, metrics: Mapping[str, float]) -> None:
        run = str(number)
        self.buffer.put_metrics(run, self.metrics.rows(run, int(step), metrics, now_ms()))

    def end_trial(self, record: TrialRecord) -> None:
        run = str(record.number)
        if not self.metrics.is_open(run):  # it never started here: give it its run now
            self.start_trial(record.number, record.params)
        if self._sampler is not None:
            self._sampler.remove(run)
        evals = self.metrics.close_trial(run)
        put_trial_end(self.buffer, run, record, evals, self.metrics, self._study_dir)
        self.metrics.count(record)
        self.buffer.put_metrics(STUDY, self.metrics.study_rows(record, now_ms()))

    def end_study(self, result: StudyResult) -> None:
        if self._sampler is not None:
            self._sampler.stop()
        best, now = result.best, now_ms()
        tags = {"hpo.stop_reason": result.stop_reason}
        if best is not None:
            tags["hpo.best_trial"] = str(best.number)
            tags.update({clean_key(f"hpo.best.{k}"): as_text(v) for k, v in best.params.items()})
            new = new_best_params(self._parent_params, best.params)
            if new:
                self._parent_params.update(new)
                self.buffer.put(Op("params", STUDY, {"params": new}))
        self.buffer.put(Op("tags", STUDY, {"tags": tags}))
        step, key = max((t.number for t in result.trials), default=0), self.metrics.key
        rows = [
            (f"{STUDY_PREFIX}n_{s}", float(result.count(s)), now, step) for s in self.metrics.counts
        ]
        rows.append((f"{STUDY_PREFIX}wall_seconds", float(result.wall_seconds), now, step))
        for objective, value in zip(result.objectives, best.values if best else (), strict=False):
            rows.append((key(f"{STUDY_PREFIX}best_{objective.metric}"), float(value), now, step))
        self.buffer.put_metrics(STUDY, rows)
        for name in ("summary.json", "best_params.yaml"):
            self._put_text(STUDY, result.dir / name, name)
        status = study_status(result.stop_reason)
        self.buffer.put(Op("end", STUDY, {"status": status, "end_time": now}))
        # after Ctrl-C, a store that does not answer keeps the user waiting 10 s at most
        self.close(min(self.close_timeout, 10.0) if status == "KILLED" else self.close_timeout)

    # ------------------------------------------------------------------ beyond the protocol

    def close(self, timeout: float | None = None) -> None:
        """Stop the system metrics; send what is left, keep the rest on disk (StudyRuns)."""
        if self._sampler is not None:
            self._sampler.stop()
        super().close(timeout)

    def publish(self, study_dir: str | Path) -> bool:
        """Plots and best model on the study's run (hpo.tracking.publish), if the study's
        records all arrived; else a mark in the journal, and `hpo sync` publishes."""
        if self.delivered is False:
            PendingJournal(study_dir).append({"publish": True})
            log.warning("tracking: the study's plots and best model are published by hpo sync")
            return False
        return publish_study(self.client, self.parent_run_id, study_dir)

    # ------------------------------------------------------------------ small things

    def _put_text(self, run: str, path: Path, artifact: str) -> None:
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError):
            return
        self.buffer.put(Op("text", run, {"text": text, "artifact_file": artifact}))

    def _emit_system(self, run: str, metrics: Mapping[str, float], step: int) -> None:
        buffer, now = self.buffer, now_ms()
        if buffer is not None:
            buffer.put_metrics(
                run, [(self.metrics.key(k), v, now, step) for k, v in metrics.items()]
            )


def _ui_hint(uri: str) -> str:
    if uri.startswith(("http://", "https://")):
        return ""
    if uri == f"sqlite:///{Path('mlflow.db').resolve()}":
        return "; see it with: mlflow ui"
    return f"; see it with: mlflow ui --backend-store-uri {uri}"
