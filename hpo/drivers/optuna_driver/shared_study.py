"""A study on a database that several workers share: the global budget, dead workers' trials.

What OptunaSuggester does only when its study is on a database (hpo.drivers.optuna_driver's
docstring says why): ask under a PostgreSQL advisory lock, within the budget counted over every
worker's trials, after failing and queueing again the trials whose worker died (their
heartbeat went silent); queue an interrupted trial again with the same params, marked as the
continuation of its trial (CONTINUES), so that whichever worker takes it goes on from that
trial's last.pt when its --runs folder holds it.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hpo.drivers.optuna_driver.storage import Heartbeat
from hpo.study import trial_dir

CONTINUES = "hpo_continues"  # system attr of a database trial queued to go on with another


def ask_shared(
    study: Any, storage: Any, study_id: int, budget: int | None
) -> tuple[Any, Heartbeat] | None:
    """A new or queued trial and its running heartbeat, asked by one worker at a time; None
    when the trials complete, pruned or running anywhere fill the budget."""
    with _study_lock(storage, study.study_name):
        return _ask_within_budget(study, storage, study_id, budget)


def _ask_within_budget(
    study: Any, storage: Any, study_id: int, budget: int | None
) -> tuple[Any, Heartbeat] | None:
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # fails and queues dead workers' trials
    states = optuna.trial.TrialState
    counted = (states.COMPLETE, states.PRUNED, states.RUNNING)
    if budget is not None and len(study.get_trials(deepcopy=False, states=counted)) >= budget:
        return None
    with warnings.catch_warnings():  # this is the heartbeat Optuna's optimize() would run
        warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
        trial = study.ask()
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
    return trial, Heartbeat(storage, trial_id)


@contextmanager
def _study_lock(storage: Any, study_name: str) -> Iterator[None]:
    """PostgreSQL: one worker at a time counts the trials and asks (other databases: none)."""
    if storage.engine.dialect.name != "postgresql":
        yield
        return
    from sqlalchemy import text

    digest = hashlib.sha256(f"hpo study {study_name}".encode()).digest()
    key = {"key": int.from_bytes(digest[:8], "big", signed=True)}
    with storage.engine.connect() as connection:  # a dead worker's session ends: unlocked
        connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)


def checkpoint_to_continue(storage: Any, study_dir: Path, trial: Any) -> str | None:
    """A database's copy of an interrupted or dead trial: that trial's last.pt, when it ran in
    this folder; None for any other trial."""
    attrs = storage.get_trial_system_attrs(trial._trial_id)
    earlier = attrs.get(CONTINUES, (attrs.get("retry_history") or [None])[-1])
    if earlier is None:
        return None
    last = trial_dir(study_dir, earlier) / "checkpoints" / "last.pt"
    return str(last) if last.is_file() else None


def queue_again(study: Any, storage: Any, trial: Any) -> None:
    """An interrupted trial: failed, and queued again with the same params (as the heartbeat's
    retry does) for whichever worker asks next."""
    import optuna

    states = optuna.trial.TrialState
    try:
        study.tell(trial, state=states.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # failed as dead by another worker, which queued it again
    frozen = storage.get_trial(trial._trial_id)
    study.add_trial(
        optuna.trial.create_trial(
            state=states.WAITING,
            params=frozen.params,
            distributions=frozen.distributions,
            system_attrs={CONTINUES: frozen.number},
        )
    )
