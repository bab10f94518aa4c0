"""kill -9 during a search, then --resume: nothing finished is lost or run twice, the trials
the kill interrupted are continued with their params, and no configuration is measured twice
(the space is continuous: a repeat would come from a sampler seeded again as before).

This file is also the killed search: `python tests/hpo/test_drivers_resume.py DRIVER RUNS K`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpo.drivers import available_drivers, get_driver
from hpo.drivers.base import StudySpec
from hpo.space import space_from_dict
from hpo.study import INTERRUPTED, load_trials

ROOT = Path(__file__).parents[2]
TRIALS = 6


def slow_trial(params, reporter):
    for step in (1, 2, 3):
        time.sleep(0.1)
        reporter.report(step, {"val_loss": params["y"] + 1.0 / step})
    return params["y"]


def search(driver: str, runs: Path, parallel: int, resume: bool):
    raw = {
        "budget": {"trials": TRIALS},
        "driver": {"seed": 0, "bo": {"init_points": 3}},
        "params": {"y": {"type": "float", "low": 0.0, "high": 1.0}},
    }
    space = space_from_dict(raw, source="killed.yaml", driver=driver)
    study = StudySpec.for_space(space, runs=runs, parallel=parallel, resume=resume, quiet=True)
    return get_driver(driver).run(space, study, slow_trial)


def complete_trials(study_dir: Path) -> dict:
    return {r.number: r for r in load_trials(study_dir) if r.state == "complete"}


CASES = [("random", 1), ("optuna", 1), ("optuna", 2), ("bo", 1), ("ray", 1)]
# ray starts a local Ray cluster in the killed search and another in the resumed one
PARAMS = [
    pytest.param(driver, parallel, marks=pytest.mark.service)
    if driver == "ray"
    else (driver, parallel)
    for driver, parallel in CASES
    if driver in available_drivers()
]


@pytest.mark.parametrize(("driver", "parallel"), PARAMS)
@pytest.mark.slow
def test_search_killed_and_resumed_keeps_finished_trials_and_ends_with_the_budget(
    tmp_path, driver, parallel
):
    runs, study_dir = tmp_path / "runs", tmp_path / "runs" / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, __file__, driver, str(runs), str(parallel)], env=env, cwd=ROOT
    )
    deadline = time.monotonic() + 120  # a guard against a hung search: Ray starts slowly
    while len(complete_trials(study_dir)) < 2 and process.poll() is None:
        assert time.monotonic() < deadline, "the search never finished two trials"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the search ended before it was killed"
    before = complete_trials(study_dir)
    killed = {r.number: r for r in load_trials(study_dir) if r.state == "running"}

    result = search(driver, runs, parallel, resume=True)

    after = complete_trials(study_dir)
    states = {r.number: (r.state, r.reason) for r in load_trials(study_dir)}
    for number, record in before.items():
        assert (after[number].params, after[number].values) == (record.params, record.values)
    assert len(after) == TRIALS and result.count("complete") == TRIALS
    for number, record in killed.items():  # continued, same params, not replaced
        if driver == "ray" and number not in after:  # Ray's saved state may predate it
            assert states[number] == ("failed", INTERRUPTED)
            continue
        assert number in after and after[number].params == record.params
    assert len({json.dumps(r.params, sort_keys=True) for r in after.values()}) == TRIALS
    assert all(state not in ("running", "interrupted") for state, _ in states.values())
    assert all(reason == INTERRUPTED for state, reason in states.values() if state == "failed")
    if driver == "optuna":
        import optuna

        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(study_dir / "optuna.journal"))
        )
        stored = optuna.load_study(study_name="killed", storage=storage).trials
        assert sorted(t.number for t in stored) == sorted(states)
        complete = [t for t in stored if t.state == optuna.trial.TrialState.COMPLETE]
        assert {t.number: t.value for t in complete} == {n: r.value for n, r in after.items()}
    if driver == "bo":
        saved = json.loads((study_dir / "bo_observations.json").read_text())["observations"]
        assert sorted(o["number"] for o in saved) == sorted(after)


if __name__ == "__main__":
    search(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), resume=False)
