"""Trial n is Ray's trial "n": its number names its folder, runs/<study>/trials/<n>/.

A number is taken by creating that folder, so that a restored experiment, a new one and the
searcher's own reservations never collide: the folders on disk, not a counter, say what is taken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpo.study import trial_dir


def next_free_number(study_dir: Path) -> int:
    trials = study_dir / "trials"
    taken = [int(p.name) for p in trials.iterdir() if p.name.isdigit()] if trials.is_dir() else []
    return max(taken, default=-1) + 1


def reserve_number(study_dir: Path) -> int:
    """The next free trials/<n>/ folder, taken by creating it (so restored runs never collide)."""
    number = next_free_number(study_dir)
    while True:
        try:
            trial_dir(study_dir, number).mkdir(parents=True)
            return number
        except FileExistsError:
            number += 1


class TrialName:
    """Ray's trial_name_creator: the trial number, as the searcher chose it or reserved here."""

    def __init__(self, study_dir: str) -> None:
        self.study_dir = study_dir

    def __call__(self, trial: Any) -> str:
        if "hpo_trial" in trial.config:
            return str(trial.config["hpo_trial"])
        return str(reserve_number(Path(self.study_dir)))


def trial_dirname(trial: Any) -> str:
    return f"trial_{trial}"
