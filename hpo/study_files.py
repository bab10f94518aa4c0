"""A study's files one at a time: where they are, writing them, and reading them back checked.

    trials/<n>/trial.json   write_trial, load_trial, load_trials (trial_dir: the trial's folder)
    study.yaml              load_settings, settings_objectives (hpo.study.open_study writes it)
    summary.json            read_summary (hpo.study.finish_study writes it)

Each is written atomically and durably through runner.files. A file that is empty or damaged is
refused with StudyFileError, "PATH: what is wrong", never a traceback. What a study is made of
(its trials together, the best one, the outputs of a run) is hpo.study's, which re-exports
these names.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

from hpo.records import TrialRecord, TrialState
from hpo.space import Objective
from runner.errors import ConfigError, UserInputError
from runner.files import atomic_write_json
from runner.yaml_io import excerpt, load_yaml_file

# runner.files' atomic, fsync'd writer of a JSON file, by the name the study's modules use
write_json = atomic_write_json


class StudyFileError(UserInputError):
    """A study file is empty or damaged: "PATH: what is wrong" (and what to do about it)."""


def trial_dir(study_dir: Path, number: int) -> Path:
    return study_dir / "trials" / str(number)


def write_trial(study_dir: Path, record: TrialRecord) -> None:
    write_json(trial_dir(study_dir, record.number) / "trial.json", record.to_dict())


def read_json_file(path: Path) -> dict[str, Any]:
    """A study's JSON file as a dict; StudyFileError naming it when it is empty or damaged."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise StudyFileError(f"{path}: cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise StudyFileError(f"{path}: damaged: not UTF-8 text (byte {err.start})") from None
    if not text.strip():
        raise StudyFileError(f"{path}: empty (a write cut short by a crash or a full disk)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise StudyFileError(
            f"{path}: damaged: not valid JSON ({err.msg} at line {err.lineno})"
        ) from None
    if not isinstance(data, dict):
        raise StudyFileError(
            f"{path}: damaged: a JSON object expected, found {type(data).__name__}"
        )
    return data


KNOWN_STATES = set(typing.get_args(TrialState))  # a trial.json that says another is damaged
_TRIAL_FIELDS = {  # what a trial.json must hold, and of which type
    "number": int,
    "params": dict,
    "state": str,
    "values": (list, type(None)),
    "reason": (str, type(None)),
    "duration": (int, float),
    "steps": int,
    "started": (int, float),
}


def load_trial(path: Path) -> TrialRecord:
    """One trials/<n>/trial.json; StudyFileError naming it when it is empty or damaged."""
    drop = f"; fix it, or remove {path.parent} to drop the trial"
    try:
        data = read_json_file(path)
    except StudyFileError as err:
        raise StudyFileError(f"{err}{drop}") from None
    for key, kind in _TRIAL_FIELDS.items():
        if key in ("number", "params", "state") and key not in data:
            raise StudyFileError(f"{path}: damaged: no '{key}'{drop}")
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            raise StudyFileError(f"{path}: damaged: '{key}' is {excerpt(data[key])}{drop}")
    if data["state"] not in KNOWN_STATES:
        raise StudyFileError(f"{path}: damaged: unknown state {excerpt(data['state'])}{drop}")
    values = data.get("values") or []
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise StudyFileError(f"{path}: damaged: 'values' is {excerpt(values)}{drop}")
    return TrialRecord.from_dict(data)


def load_trials(study_dir: Path) -> list[TrialRecord]:
    """Every trial.json of the study, by number (trials without one are skipped)."""
    records = [load_trial(path) for path in (study_dir / "trials").glob("*/trial.json")]
    return sorted(records, key=lambda r: r.number)


def load_settings(study_dir: Path) -> dict[str, Any]:
    """study.yaml, checked enough to be used: StudyFileError "PATH: what is wrong" otherwise."""
    path = study_dir / "study.yaml"
    try:
        settings = load_yaml_file(path, "study file")
    except ConfigError as err:
        raise StudyFileError(str(err)) from None
    if settings is None:
        raise StudyFileError(f"{path}: empty (a write cut short by a crash or a full disk)")
    if not isinstance(settings, dict):
        raise StudyFileError(f"{path}: damaged: a mapping expected")
    space = settings.get("space")
    if not isinstance(settings.get("study"), str):
        raise StudyFileError(f"{path}: damaged: no study name (study)")
    if not isinstance(space, dict) or not isinstance(space.get("params"), dict):
        raise StudyFileError(f"{path}: damaged: no search space (space.params)")
    settings_objectives(settings, path)
    return settings


def settings_objectives(settings: dict[str, Any], path: Path) -> list[Objective]:
    """The objectives study.yaml names (space.objective: one, or a list)."""
    raw = settings["space"].get("objective")
    try:
        return [Objective(**o) for o in (raw if isinstance(raw, list) else [raw])]
    except (TypeError, ValueError) as err:
        raise StudyFileError(
            f"{path}: damaged: space.objective is {excerpt(raw)} ({err})"
        ) from None


def read_summary(study_dir: Path) -> dict[str, Any] | None:
    """summary.json (None before a run of the study has ended); StudyFileError when damaged."""
    path = study_dir / "summary.json"
    if not path.is_file():
        return None
    summary = read_json_file(path)
    if not isinstance(summary.get("wall_seconds", 0.0), int | float):
        raise StudyFileError(f"{path}: damaged: wall_seconds is {excerpt(summary['wall_seconds'])}")
    return summary
