"""The DVC pipeline for real: a repro killed during search finished by the next one, a no-op
second repro, metrics and plots shown, and `dvc exp run -S` with experiments shown; a
params.yaml value that carries a shell command runs nothing.

Runs the real dvc in a temporary git repository holding a copy of the project, with the
pipeline's parameters shrunk so each trial takes a few seconds.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def leaves(tree):
    """The values of a nested metrics mapping."""
    for value in tree.values() if isinstance(tree, dict) else ():
        yield from leaves(value) if isinstance(value, dict) else [value]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git repository holding the project's files, with a small pipeline budget."""
    repo = tmp_path / "project"
    files = run(ROOT, "git", "ls-files", "-co", "--exclude-standard").stdout.split()
    for name in files:
        if name.startswith(("tests/", "bench/")) or not (ROOT / name).is_file():
            continue
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    # MLflow tracking is tested against a real server elsewhere; in each search stage here its
    # store creation, plots and model registration would take longer than the trials
    params["search"].update(trials=2, max_steps=6, track=False)
    params["train"]["max_steps"] = 8
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # the default experiment shrunk: a trial of this copy takes a second or two
    experiment = yaml.safe_load((repo / "experiments/lm_tiny.yaml").read_text())
    experiment["data"]["max_chars"] = 200_000
    experiment["model"].update(n_layer=1, n_embd=32, n_head=2)
    experiment["eval"].update(eval_steps=3, max_eval_batches=2, sample_tokens=0)
    (repo / "experiments/lm_tiny.yaml").write_text(yaml.safe_dump(experiment, sort_keys=False))
    run(repo, "git", "init", "-q")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    run(repo, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project")
    return repo


@pytest.mark.slow
@pytest.mark.service
def test_a_killed_repro_is_finished_by_the_next_then_up_to_date_then_runs_an_experiment(project):
    # One story, not three tests: a repro takes about a minute on 2 cores, and each step needs
    # the state the one before it left (the suite must stay under 10 minutes).
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["search"].update(trials=3, max_steps=30)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(project, "dvc", "repro", "prepare")
    lock = (project / "dvc.lock").read_text()

    # 1. killed during the search: dvc.lock untouched
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    repro = subprocess.Popen(
        ["dvc", "repro"],
        cwd=project,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    trials = project / "runs/pipeline/trials"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(trials.glob("*/trial.json"))) < 2:
        time.sleep(0.5)
    os.killpg(repro.pid, signal.SIGKILL)  # dvc and the search under it, mid-study
    repro.wait()
    assert (project / "dvc.lock").read_text() == lock, "a killed stage must not touch dvc.lock"
    assert list(trials.glob("*/trial.json")), "the search was killed before any trial started"

    # 2. the next repro finishes the study and the rest of the pipeline
    done = run(project, "dvc", "repro")
    for stage in ("search", "train", "evaluate"):
        assert f"Running stage '{stage}'" in done.stdout
    assert (project / "models/best/checkpoints/best.pt").exists()
    summary = yaml.safe_load((project / "runs/pipeline/summary.json").read_text())
    counts = summary["n_trials"]
    assert counts["complete"] + counts["pruned"] == 3, counts  # the budget counts both, as Optuna
    lock = (project / "dvc.lock").read_text()
    assert "search" in lock and "evaluate" in lock

    # 3. a second repro does nothing
    again = run(project, "dvc", "repro")
    assert "Data and pipelines are up to date" in again.stdout
    assert (project / "dvc.lock").read_text() == lock

    # 4. metrics (numbers only: summary.json, with its strings, is not a metric) and plots
    metrics = run(project, "dvc", "metrics", "show").stdout
    assert "runs/pipeline/metrics.json" in metrics and "summary.json" not in metrics
    assert "best_val_loss" in metrics and "n_trials.complete" in metrics
    shown = json.loads(run(project, "dvc", "metrics", "show", "--json").stdout)
    values = [v for files in shown.values() for f in files["data"].values() for v in leaves(f)]
    assert values and all(isinstance(v, int | float) for v in values), values
    plots = run(project, "dvc", "plots", "show").stdout
    assert "index.html" in plots and (project / "dvc_plots/index.html").exists()

    # 5. an experiment with a larger budget adds trials to the study
    run(project, "git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    run(project, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro")
    exp = run(project, "dvc", "exp", "run", "-S", "search.trials=4")
    assert "Running stage 'search'" in exp.stdout
    diff = run(project, "dvc", "metrics", "diff", "--json").stdout
    changed = json.loads(diff)["runs/pipeline/metrics.json"]  # only what changed is listed
    assert changed["total_steps"]["new"] > changed["total_steps"]["old"], changed
    # the resumed study adds the earlier runs' wall time (DVC keeps summary.json: persist)
    assert changed["wall_seconds"]["new"] > changed["wall_seconds"]["old"], changed
    done = [changed.get(f"n_trials.{s}", {}).get("new", counts[s]) for s in ("complete", "pruned")]
    assert sum(done) == 4, changed
    shown = run(project, "dvc", "exp", "show", "--no-pager", "--csv").stdout
    assert "search.trials" in shown and ",4," in shown and ",3," in shown
    assert "n_trials.complete" in shown


def test_no_stage_command_holds_a_value_from_params_yaml():
    # DVC pastes ${...} into the command unquoted and hands it to a shell
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        assert "${" not in stage["cmd"], f"stage {name} puts a params value into its command"


@pytest.mark.service
@pytest.mark.parametrize("key", ["seed", "study", "trials", "space"])
def test_a_params_value_carrying_a_shell_command_runs_nothing(project, key):
    # the reported case: search.seed "0; touch pwned #" ran touch during `dvc repro`
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["search"][key] = "0; touch pwned #"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (project / "data/prepared").mkdir(parents=True)  # the search's dependency; no prepare run
    if key == "space":  # DVC checks that deps exist; an empty space: the search refuses it
        (project / "0; touch pwned #").write_text("params: {}\n")
    # --single-item: only the search stage, which must fail checking its params, before work
    repro = run(project, "dvc", "repro", "--single-item", "search", check=False)
    assert repro.returncode != 0
    output = repro.stdout + repro.stderr
    assert "Traceback" not in output
    assert not list(project.parent.rglob("pwned")), "a value from params.yaml ran as a command"
    if key == "space":  # a path may hold any character: it reaches hpo as one argument
        assert "hpo: error: 0; touch pwned #:1: " in output and "(params)" in output, output
    else:
        assert "hpo: error: params.yaml:" in output and f"(search.{key})" in output, output
    # runs/pipeline holds the committed baseline's metrics only; a started search writes its
    # study.yaml and trials there
    study = project / "runs" / "pipeline"
    started = [p.name for p in (study / "study.yaml", study / "trials") if p.exists()]
    assert not started, f"the search started before its params were checked: {started}"


def test_the_search_metrics_file_holds_only_the_numbers_of_the_summary():
    from hpo.pipeline_commands import study_metrics

    summary = {
        "study": "pipeline",
        "driver": "optuna",
        "objective": {"metric": "val_loss", "direction": "minimize"},
        "best_value": 3.5,
        "best_params": {"train.learning_rate": 0.003, "train.optim": "adamw", "train.x": True},
        "best_trial": 2,
        "n_trials": {"complete": 5, "pruned": 1, "failed": 0, "interrupted": 0},
        "total_steps": 600,
        "wall_seconds": 61.5,
        "stop_reason": "budget",
        "first_failure": None,
    }
    metrics = study_metrics(summary)
    assert metrics == {
        "best_val_loss": 3.5,
        "best_trial": 2,
        "n_trials": {"complete": 5, "pruned": 1, "failed": 0, "interrupted": 0},
        "total_steps": 600,
        "wall_seconds": 61.5,
        "best_params": {"train.learning_rate": 0.003},  # a choice or a flag is not a number
    }
    assert all(isinstance(v, int | float) for v in leaves(metrics))
