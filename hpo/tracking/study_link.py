"""The files that tie a study's folder to its MLflow runs: mlflow.json and mlflow.lock.

runs/<study>/mlflow.json names the store (tracking_uri), the experiment, the study's parent run
and each trial's child run: --resume reuses the parent run, `hpo sync` finds the runs a study
left RUNNING, optuna-dashboard links a trial back to its run (trial_run_link). It is rewritten
whenever a run is created, from the driver's thread and the buffer's sending thread both.

runs/<study>/mlflow.lock: a tracker holds a shared lock on it while it has a study open (the
workers of one study share it), `hpo sync` an exclusive one, so that sync never ends the runs
of a study that is still running (StudyInUse).
"""

from __future__ import annotations

import fcntl
import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from hpo.study import atomic_write_text
from runner.errors import UserInputError

LINK_FILE, LOCK_FILE = "mlflow.json", "mlflow.lock"

_write_lock = threading.Lock()  # the sending thread and the driver's both write mlflow.json


class StudyInUse(UserInputError):
    """Another process tracks this study now (it sends its own records)."""


def read_link(study_dir: str | Path) -> dict[str, Any] | None:
    """runs/<study>/mlflow.json; None when there is none, or it cannot be read."""
    path = Path(study_dir) / LINK_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def write_link(
    study_dir: Path,
    tracking_uri: str | None,
    experiment_id: str | None,
    parent_run_id: str,
    trial_runs: Mapping[str, str],
) -> None:
    """mlflow.json: the store, the experiment, the parent run and each trial's run."""
    data = {
        "tracking_uri": tracking_uri,
        "experiment_id": experiment_id,
        "parent_run_id": parent_run_id,
        "trial_runs": dict(trial_runs),
    }
    study_dir.mkdir(parents=True, exist_ok=True)
    with _write_lock:  # json.dumps writes NaN, which pending metrics may hold
        atomic_write_text(study_dir / LINK_FILE, json.dumps(data, indent=2) + "\n")


def trial_run_link(study_dir: str | Path, number: int) -> dict[str, str]:
    """Where trial `number`'s MLflow run is, from runs/<study>/mlflow.json: mlflow_run_id and,
    for a server, mlflow_run_url (what optuna-dashboard shows to link a trial back); empty
    when the study is not tracked or its run is not created yet (the store is down)."""
    link = read_link(study_dir) or {}
    run_id = (link.get("trial_runs") or {}).get(str(number))
    if not isinstance(run_id, str):
        return {}
    found = {"mlflow_run_id": run_id}
    uri, experiment = link.get("tracking_uri") or "", link.get("experiment_id")
    if uri.startswith(("http://", "https://")) and experiment:
        found["mlflow_run_url"] = f"{uri.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"
    return found


class StudyLock:
    """The lock on runs/<study>/mlflow.lock: shared while a study runs, exclusive for sync."""

    def __init__(self) -> None:
        self._handle: IO[str] | None = None

    def acquire(self, study_dir: Path, exclusive: bool) -> None:
        """Take it; StudyInUse when it is exclusive and another process has the study open."""
        path = study_dir / LOCK_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_SH)
        except BlockingIOError:
            handle.close()
            raise StudyInUse(
                f"{study_dir}: the study is running (another process tracks it and "
                "sends its own records); sync it after it ends"
            ) from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
