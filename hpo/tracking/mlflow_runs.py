"""The MLflow runs of a study: its parent run, a child run per trial, how each starts and ends.

The parent run, named after the study, holds the study settings as params and, at the end, the
best trial's params (best.<param>; MLflow params cannot change once logged, so a resumed study
whose best trial changed keeps the first best.* values it logged where they differ, with a
warning). A child run (tag mlflow.parentRunId, named "trial N") gets the searched params first,
when it starts; at its end its state and reason as tags, the trial's resolved config.yaml
flattened as params (its output_dir is tag hpo.trial_dir instead, so that "show diff only" in
MLflow's compare view shows the searched params), duration_s, steps, best_<m> and final_<m>, and
its status: RUN_STATUS, never RUNNING. The parent ends as study_status says.

Children are created and ended through the tracker's SendBuffer (hpo.tracking.buffer), under
their buffer key: STUDY for the parent, str(number) for a trial.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from hpo.study import INTERRUPTED, trial_dir
from hpo.tracking import mlflow_store
from hpo.tracking.buffer import Op, SendBuffer
from hpo.tracking.mlflow_store import MlflowSender, as_text, flatten, param_values
from hpo.tracking.run_metrics import MetricBook

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
# a study that stopped on failures or on a write error (disk full) did not finish
_STUDY_STATUS = {"interrupted": "KILLED", "failures": "FAILED", "storage": "FAILED"}


def study_status(stop_reason: str) -> str:
    """The status the parent run ends with, for the study's stop reason."""
    return _STUDY_STATUS.get(stop_reason, "FINISHED")


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------- the parent run


def reopen_parent_run(
    client: Any, link: Mapping[str, Any] | None, tracking_uri: str | None, reopen: bool = True
) -> Any:
    """The live parent run mlflow.json names in this store (reopened if it ended, unless not
    `reopen`); None when there is none."""
    if not link or link.get("tracking_uri") != tracking_uri:
        return None
    run = mlflow_store.live_run(client, link["parent_run_id"])
    if run is not None and reopen and run.info.status != "RUNNING":
        client.update_run(run.info.run_id, status="RUNNING")
    return run


def create_parent_run(
    client: Any,
    experiment_id: str,
    space: SearchSpace,
    study: StudySpec,
    driver: str,
    tags: Mapping[str, str],
) -> tuple[str, dict[str, str]]:
    """A new parent run with the study settings as params: its id, and those params."""
    run = client.create_run(experiment_id, run_name=study.name, tags=dict(tags))
    settings = {
        "study": study.name,
        "driver": driver,
        "parallel": study.parallel,
        "storage": study.storage,
        "space": space.to_dict(),
    }
    params = param_values(flatten(settings))
    MlflowSender(client, experiment_id, run.info.run_id).log_params(run.info.run_id, params)
    return run.info.run_id, params


def new_best_params(logged: Mapping[str, str], params: Mapping[str, Any]) -> dict[str, str]:
    """The best trial's params as the parent's params best.<key> that it does not have yet;
    those a resumed study logged before with another value stay as they were (a warning)."""
    new, kept = {}, []
    for key, value in param_values({f"best.{k}": v for k, v in params.items()}).items():
        before = logged.get(key)
        if before is None:
            new[key] = value
        elif before != value:
            kept.append(key)
    if kept:
        log.warning(
            "tracking: the study's run keeps its earlier %s (MLflow params cannot change); "
            "the new best is in its hpo.best.* tags",
            ", ".join(kept),
        )
    return new


# ---------------------------------------------------------------------- a trial's run


def put_trial_create(
    buffer: SendBuffer,
    run: str,
    tags: Mapping[str, str],
    start_ms: int,
    params: Mapping[str, Any],
    study_dir: Path | None,
) -> None:
    """Create trial `run`'s child run (`tags` name its parent), its searched params first."""
    tags = dict(tags)
    if study_dir is not None:
        tags["hpo.trial_dir"] = str(trial_dir(study_dir, int(run)).resolve())
    buffer.put(Op("create", run, {"name": f"trial {run}", "tags": tags, "start_time": start_ms}))
    buffer.put(Op("params", run, {"params": param_values(params)}))


def put_trial_end(
    buffer: SendBuffer,
    run: str,
    record: TrialRecord,
    evals: Mapping[str, tuple],
    metrics: MetricBook,
    study_dir: Path | None,
) -> None:
    """End trial `run`'s child run as `record` says, with its summary metrics and config."""
    tags = {"hpo.state": record.state}
    if record.reason:
        tags["hpo.reason"] = as_text(record.reason)
    buffer.put(Op("tags", run, {"tags": tags}))
    config = config_params(study_dir, record)
    if config:
        buffer.put(Op("params", run, {"params": config}))
    summary = {"duration_s": record.duration, "steps": record.steps}
    for key, (best, last) in evals.items():
        summary.update({f"best_{key}": best, f"final_{key}": last})
    if record.state == "complete" and metrics.space is not None:  # the trial's own values
        for objective, value in zip(metrics.space.objectives, record.values or (), strict=False):
            summary[f"best_{objective.metric}"] = value
    now = now_ms()
    buffer.put_metrics(
        run, [(metrics.key(k), float(v), now, record.steps) for k, v in summary.items()]
    )
    status = "KILLED" if record.reason == INTERRUPTED else RUN_STATUS.get(record.state, "FAILED")
    end = int((record.started + record.duration) * 1000) if record.started else now
    buffer.put(Op("end", run, {"status": status, "end_time": end}))


def config_params(study_dir: Path | None, record: TrialRecord) -> dict[str, str]:
    """The trial's resolved config.yaml (written by the runner), flattened, minus the params."""
    if study_dir is None:
        return {}
    path = trial_dir(study_dir, record.number) / "config.yaml"
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
