"""The DVC pipeline for real: `dvc repro`, a no-op second repro, `dvc exp run -S`, metrics,
plots and experiments shown, and a repro killed during search finished by the next one.

Runs the real dvc in a temporary git repository holding a copy of the project, with the
pipeline's parameters shrunk so each trial takes a few seconds.
"""

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
pytestmark = [pytest.mark.slow, pytest.mark.service]


def run(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


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
    params["search"].update(trials=2, max_steps=6)
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


def test_dvc_repro_runs_end_to_end_then_does_nothing_then_runs_an_experiment(project):
    first = run(project, "dvc", "repro")
    for stage in ("prepare", "search", "train", "evaluate"):
        assert f"Running stage '{stage}'" in first.stdout
    assert (project / "dvc.lock").exists() and (
        project / "models/best/checkpoints/best.pt"
    ).exists()
    lock = (project / "dvc.lock").read_text()

    again = run(project, "dvc", "repro")
    assert "Data and pipelines are up to date" in again.stdout
    assert (project / "dvc.lock").read_text() == lock

    metrics = run(project, "dvc", "metrics", "show").stdout
    assert "runs/pipeline/summary.json" in metrics and "metrics.json" in metrics
    assert "val_loss" in metrics and "best_value" in metrics
    plots = run(project, "dvc", "plots", "show").stdout
    assert "index.html" in plots and (project / "dvc_plots/index.html").exists()

    run(project, "git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    run(project, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "repro")
    exp = run(project, "dvc", "exp", "run", "-S", "search.trials=3")
    assert "Running stage 'search'" in exp.stdout
    shown = run(project, "dvc", "exp", "show", "--no-pager", "--csv").stdout
    assert "search.trials" in shown and ",3," in shown and ",2," in shown
    assert "n_trials.complete" in shown


def test_a_repro_killed_during_search_leaves_dvc_lock_and_the_next_one_finishes(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["search"].update(trials=4, max_steps=30)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(project, "dvc", "repro", "prepare")
    lock = (project / "dvc.lock").read_text()
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
    finished_before = len(list(trials.glob("*/trial.json")))
    assert 0 < finished_before

    done = run(project, "dvc", "repro")
    assert "Running stage 'search'" in done.stdout and "Running stage 'evaluate'" in done.stdout
    summary = yaml.safe_load((project / "runs/pipeline/summary.json").read_text())
    counts = summary["n_trials"]
    assert counts["complete"] + counts["pruned"] == 4, counts  # the budget counts both, as Optuna
    assert "search" in (project / "dvc.lock").read_text()
