"""Optuna on a shared database: `hpo search --storage URL` and `hpo worker` processes share a study.

This file is also a worker: `python tests/hpo/test_distributed_optuna.py worker --storage URL
--study NAME ...` runs the `hpo worker` command (hpo.worker's parser and function).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest

from hpo.drivers import get_driver
from hpo.drivers.base import StudySpec
from hpo.space import space_from_dict
from hpo.study import INTERRUPTED, load_trials
from hpo.worker import add_worker_command, objective_from_recipe, space_from_recipe
from runner.errors import UserInputError

ROOT = Path(__file__).parents[2]
OBJECTIVE = "tests.hpo.test_distributed_optuna:sleepy_bowl"
TRIALS = 30
SPACE = f"""
objective: {{metric: val_loss, direction: minimize}}
budget: {{trials: {TRIALS}}}
driver: {{seed: 0, optuna: {{pruner: none, heartbeat_interval: 1, grace_period: 3}}}}
params:
  x: {{type: float, low: 0.0, high: 1.0}}
  y: {{type: float, low: -1.0, high: 1.0}}
  width: 0
"""
_trials_run = 0  # by this process


def sleepy_bowl(params, reporter):
    """About 0.3 s per trial; the HPO_TEST_HANG_AT-th trial of a process hangs (to be killed)."""
    global _trials_run
    _trials_run += 1
    if str(_trials_run) == os.environ.get("HPO_TEST_HANG_AT"):
        (reporter.dir / "hanging").touch()
        time.sleep(600)
    value = params["x"] ** 2 + params["y"] ** 2 + params["width"]
    for step in (1, 2, 3):
        time.sleep(0.1)
        reporter.report(step, {"val_loss": value + 1.0 / step})
    return value


def start(*args: str, env: dict | None = None) -> subprocess.Popen:
    path = os.pathsep.join((str(ROOT), str(ROOT / "tests" / "hpo")))  # OBJECTIVE imports postgres
    env = {**os.environ, "PYTHONPATH": path, **(env or {})}
    return subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.1)


def worker_args(url: str, study: str, runs: Path) -> list[str]:
    return [
        "worker",
        "--storage",
        url,
        "--study",
        study,
        "--runs",
        str(runs),
        "--no-track",
        "--quiet",
    ]


@pytest.mark.service
def test_three_workers_one_killed_run_the_budget_once_and_retry_the_dead_trial_once(
    tmp_path, postgres_url
):
    space_file = tmp_path / "bowl.yaml"
    space_file.write_text(SPACE)
    search = start(
        "-m",
        "hpo.cli",
        "search",
        "--space",
        str(space_file),
        "--storage",
        postgres_url,
        "--study",
        "dist",
        "--objective",
        OBJECTIVE,
        "--runs",
        str(tmp_path / "w0"),
        "--no-track",
        "--quiet",
    )
    # study.yaml comes once the study and its recipe are stored (and the database's tables made:
    # this process creates none, as two creating them at once would collide)
    wait_for(
        lambda: (tmp_path / "w0" / "dist" / "study.yaml").exists() or search.poll() is not None,
        "hpo search to create the study",
    )
    assert search.poll() is None, search.communicate()[0]
    victim = start(
        __file__, *worker_args(postgres_url, "dist", tmp_path / "w1"), env={"HPO_TEST_HANG_AT": "4"}
    )
    survivor = start(__file__, *worker_args(postgres_url, "dist", tmp_path / "w2"))
    victim_trials = tmp_path / "w1" / "dist" / "trials"
    wait_for(
        lambda: any(victim_trials.glob("*/hanging")) or victim.poll() is not None,
        "the victim's 4th trial",
    )
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL, victim.communicate()[0]
    killed_dir = next(victim_trials.glob("*/hanging")).parent
    killed = json.loads((killed_dir / "trial.json").read_text())
    for process in (search, survivor):
        output = process.communicate(timeout=90)[0]
        assert process.returncode == 0, output

    trials = optuna.load_study(study_name="dist", storage=postgres_url).trials
    states = Counter(t.state.name for t in trials)
    assert states == {"COMPLETE": TRIALS, "FAIL": 1}, states
    (failed,) = [t for t in trials if t.state.name == "FAIL"]
    assert failed.number == killed["number"] and {**failed.params, "width": 0} == killed["params"]
    retries = [t for t in trials if t.system_attrs.get("failed_trial") is not None]
    assert [(t.system_attrs["failed_trial"], t.state.name) for t in retries] == [
        (failed.number, "COMPLETE")
    ]
    assert retries[0].params == failed.params
    params = Counter(json.dumps(t.params, sort_keys=True) for t in trials)
    assert {p: n for p, n in params.items() if n > 1} == {
        json.dumps(failed.params, sort_keys=True): 2
    }
    on_disk = {r.number: r for w in ("w0", "w1", "w2") for r in load_trials(tmp_path / w / "dist")}
    assert sorted(on_disk) == sorted(t.number for t in trials)
    assert on_disk[retries[0].number].state == "complete"
    assert on_disk[failed.number].state == "running"  # its worker died; nobody else owns w1

    rejoined = argparse.ArgumentParser()
    add_worker_command(rejoined.add_subparsers())
    args = rejoined.parse_args(worker_args(postgres_url, "dist", tmp_path / "w1"))
    assert args.command(args) == 0  # the budget is spent: it only settles its folder

    record = {r.number: r for r in load_trials(tmp_path / "w1" / "dist")}[failed.number]
    assert (record.state, record.reason) == ("failed", INTERRUPTED)
    summary = json.loads((tmp_path / "w1" / "dist" / "summary.json").read_text())
    assert summary["n_trials"] == {"complete": 3, "pruned": 0, "failed": 1, "interrupted": 0}
    assert summary["stop_reason"] == "budget"
    assert len(optuna.load_study(study_name="dist", storage=postgres_url).trials) == TRIALS + 1


def sqlite_search(
    tmp_path: Path, raw_space: str, study: str = "s", objective=sleepy_bowl, runs: str = "runs"
):
    import yaml

    space = space_from_dict(yaml.safe_load(raw_space), source="bowl.yaml", driver="optuna")
    spec = StudySpec.for_space(
        space,
        name=study,
        runs=tmp_path / runs,
        quiet=True,
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
    )
    return space, spec, get_driver("optuna").run(space, spec, objective)


def test_a_search_on_a_database_stores_the_space_and_objective_a_worker_rebuilds(tmp_path):
    space, spec, _ = sqlite_search(tmp_path, SPACE.replace("trials: 30", "trials: 1"))
    from hpo.drivers.optuna_driver import read_recipe

    recipe = read_recipe(spec.storage, "s")
    rebuilt = space_from_recipe(recipe)
    assert rebuilt.params == space.params  # low: 0.0 and width: 0 included
    assert (rebuilt.objectives, rebuilt.budget) == (space.objectives, space.budget)
    assert rebuilt.driver_options == space.driver_options
    assert objective_from_recipe(recipe, "s") is sleepy_bowl


def test_a_search_on_a_database_refuses_a_study_of_other_params(tmp_path):
    sqlite_search(tmp_path, SPACE.replace("trials: 30", "trials: 1"))
    other = SPACE.replace("trials: 30", "trials: 1").replace("high: 1.0}", "high: 2.0}", 1)
    with pytest.raises(UserInputError, match="params differ from those of study 's'"):
        sqlite_search(tmp_path, other, runs="elsewhere")


def test_a_worker_of_an_unknown_study_says_how_to_start_it(tmp_path):
    from hpo.drivers.optuna_driver import read_recipe

    with pytest.raises(UserInputError, match="no study 'nope' .* hpo search --storage URL"):
        read_recipe(f"sqlite:///{tmp_path / 'optuna.db'}", "nope")


@pytest.mark.slow
def test_two_processes_cannot_share_a_workers_trials_folder(tmp_path):
    folder = tmp_path / "runs" / "s"
    folder.mkdir(parents=True)
    with (folder / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(UserInputError, match="another hpo process on this machine"):
            sqlite_search(tmp_path, SPACE)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="hpo")
    add_worker_command(parser.add_subparsers())
    arguments = parser.parse_args(sys.argv[1:])
    sys.exit(arguments.command(arguments))
