"""What a study's folder says now, for `hpo status` and `hpo best`: counts by state, the best.

Read from the files alone (study.yaml, every trial.json, summary.json once a run has ended),
so it works while the study runs, from another process; hpo.study_report renders it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo.records import END_STATES, TrialRecord
from hpo.space import Objective
from hpo.study_files import load_settings, load_trials, read_summary, settings_objectives
from hpo.study_ranking import best_trial
from runner.errors import UserInputError


@dataclass(frozen=True)
class StudyStatus:
    """What `hpo status` and `hpo best` print (hpo.study_report renders it)."""

    study: str
    driver: str | None
    counts: dict[str, int]  # running, complete, pruned, failed
    best: TrialRecord | None
    summary: dict[str, Any] | None  # summary.json, once a run of the study has ended
    objectives: tuple[Objective, ...] = ()  # what study.yaml says it optimizes
    trials: tuple[TrialRecord, ...] = ()  # every trial.json, by number


def read_study(study_dir: str | Path) -> StudyStatus:
    """Counts by state and the best trial, from the files (also while the study runs)."""
    study_dir = Path(study_dir)
    settings_path = study_dir / "study.yaml"
    if not settings_path.is_file():
        raise UserInputError(f"{study_dir}: no study here (study.yaml not found)")
    settings = load_settings(study_dir)
    records = load_trials(study_dir)
    counts = {s: sum(1 for r in records if r.state == s) for s in ("running", *END_STATES)}
    objectives = settings_objectives(settings, settings_path)
    best = best_trial(records, objectives)
    return StudyStatus(
        settings["study"],
        settings.get("driver"),
        counts,
        best,
        read_summary(study_dir),
        tuple(objectives),
        tuple(records),
    )
