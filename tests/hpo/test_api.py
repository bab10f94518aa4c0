"""hpo.search and hpo.train, the Python API: what they return agrees with the study's files and
the `hpo` command, bad input is a typed exception, Ctrl-C leaves a resumable study, and the
README's snippet runs as written."""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import hpo
from hpo.api import SearchOptions
from hpo.cli import main
from hpo.errors import SearchFailed, SpaceError, UsageError

ROOT = Path(__file__).parents[2]
SPACE = {
    "objective": {"metric": "val_loss", "direction": "minimize"},
    "driver": {"seed": 0},
    "params": {
        "train.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "train.weight_decay": {"type": "categorical", "choices": [0.0, 0.1]},
    },
}


def bowl(params, reporter):
    """Minimum 0 at learning rate 1e-3 (a function of this module, not of a package)."""
    import math

    value = (math.log10(params["train.learning_rate"]) + 3) ** 2 + params["train.weight_decay"]
    reporter.report(1, {"val_loss": value})
    return value


@pytest.mark.slow
def test_search_with_a_function_and_a_dict_returns_what_the_study_files_say(tmp_path, capsys):
    runs = tmp_path / "runs"
    result = hpo.search(SPACE, bowl, trials=6, study="fn", runs=runs, track=False, quiet=True)
    assert result.count("complete") == 6 and len(result.trials) == 6
    values = [t.value for t in result.trials]
    assert result.best_value == min(values)
    assert result.best_params == result.trials[values.index(min(values))].params
    assert result.best_checkpoint is None  # the function saved none
    # the same as `hpo status --json` and `hpo best` report for the study
    assert main(["status", "fn", "--runs", str(runs), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["best"]["value"] == result.best_value
    assert status["best"]["params"] == result.best_params
    assert [t["number"] for t in status["trials"]] == [t.number for t in result.trials]
    assert main(["best", "fn", "--runs", str(runs)]) == 0
    best = capsys.readouterr().out
    assert f"best trial {result.best_trial.number}: val_loss {result.best_value:.6g}" in best
    frame = result.trials_dataframe()
    assert list(frame["number"]) == list(range(6))
    assert frame["value"].min() == result.best_value
    assert set(frame["state"]) == {"complete"}
    assert "params_train.learning_rate" in frame and "datetime_start" in frame
    assert (frame["duration"].dt.total_seconds() >= 0).all()


def test_search_takes_module_function_and_a_space_file_like_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # tests.hpo.search_objectives is imported from the project root
    space = tmp_path / "s.yaml"
    space.write_text(
        "objective: {metric: val_loss, direction: minimize}\n"
        "params:\n  train.learning_rate: {type: float, low: 1e-5, high: 1e-1, log: true}\n"
    )
    result = hpo.search(
        space,
        "tests.hpo.search_objectives:quadratic",
        trials=3,
        runs=tmp_path / "runs",
        track=False,
        quiet=True,
        seed=1,
    )
    assert result.study == "s" and result.dir == tmp_path / "runs" / "s"
    assert result.count("complete") == 3 and result.best_value >= 0


def test_bad_input_is_a_typed_error_before_anything_is_created(tmp_path):
    runs = tmp_path / "runs"
    bad = {**SPACE, "params": {"x": {"type": "float", "low": 1, "high": 0}}}
    with pytest.raises(SpaceError) as caught:
        hpo.search(bad, bowl, runs=runs, track=False)
    assert caught.value.source == "<space>" and caught.value.key == "params.x"
    assert "below high" in caught.value.problem
    with pytest.raises(UsageError):
        hpo.search(SPACE, bowl, trials="8", runs=runs, track=False)
    with pytest.raises(UsageError):
        hpo.search(SPACE, bowl, parallel=0, runs=runs, track=False)
    with pytest.raises(hpo.errors.ConfigError, match="lambda"):  # workers cannot import it
        hpo.search(SPACE, lambda p, r: 0.0, parallel=2, runs=runs, track=False)
    with pytest.raises(hpo.errors.ConfigError, match=r"\(params, reporter\)"):
        hpo.search(SPACE, lambda params: 0.0, runs=runs, track=False)
    assert not runs.exists()


def test_a_command_search_through_the_api_returns_what_the_script_reported(tmp_path):
    """hpo.search(command=...) runs the same command trials as `hpo search --command`."""
    script = Path(__file__).parent / "command_script.py"
    space = {
        "objective": {"metric": "val_loss", "direction": "minimize"},
        "driver": {"seed": 0},
        "params": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}},
    }
    result = hpo.search(
        space,
        command=f"{{python}} {script} --lr {{lr}} --steps 3",
        driver="random",
        trials=2,
        runs=tmp_path / "runs",
        track=False,
    )
    reported = []
    for trial in result.trials:
        reports = (result.dir / "trials" / str(trial.number) / "reports.jsonl").read_text()
        values = [json.loads(line)["val_loss"] for line in reports.splitlines()]
        assert trial.value == min(values)  # a trial's value: the best of what it reported
        reported.append(min(values))
    assert result.best_value == min(reported)
    with pytest.raises(UsageError, match="not both"):
        hpo.search(space, "m:f", command="true", runs=tmp_path / "other", track=False)
    assert not (tmp_path / "other").exists()


def test_every_trial_failing_raises_search_failed_with_the_trials(tmp_path):
    def fails(params, reporter):
        raise RuntimeError("diverged")

    with pytest.raises(SearchFailed, match="every trial failed; the first: .*diverged") as caught:
        hpo.search(SPACE, fails, trials=2, runs=tmp_path / "runs", track=False, quiet=True)
    assert caught.value.result.count("failed") >= 2


def test_search_takes_exactly_the_options_the_command_fills():
    parameters = list(inspect.signature(hpo.search).parameters)
    assert parameters == [f.name for f in dataclasses.fields(SearchOptions)]


def slow(params, reporter):
    for step in range(1, 41):
        time.sleep(0.05)
        reporter.report(step, {"val_loss": 1.0 / step})
        if step == 1:
            Path(reporter.dir, "started").touch()
    return params["train.weight_decay"]


@pytest.mark.slow
def test_ctrl_c_raises_keyboard_interrupt_and_the_study_resumes(tmp_path):
    runs = tmp_path / "runs"
    started = runs / "c" / "trials" / "0" / "started"

    def interrupt_when_started() -> None:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_started, daemon=True).start()
    with pytest.raises(KeyboardInterrupt, match="resume=True"):
        hpo.search(SPACE, slow, trials=1, study="c", runs=runs, track=False, quiet=True)
    trial = json.loads((runs / "c" / "trials" / "0" / "trial.json").read_text())
    assert trial["state"] == "interrupted"
    assert (runs / "c" / "summary.json").exists()
    result = hpo.search(
        SPACE, slow, trials=1, study="c", runs=runs, track=False, quiet=True, resume=True
    )
    assert result.count("complete") == 1 and result.trials[0].number == 0


@pytest.mark.slow
def test_train_runs_the_tiny_experiment_and_returns_its_result(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    overrides = {
        "model.n_layer": 1,
        "model.n_embd": 32,
        "model.n_head": 2,
        "train.max_steps": 4,
        "train.learning_rate": 3e-3,
        "train.weight_decay": 1e-05,  # YAML 1.1 would read "1e-05" as text
        "eval.eval_steps": 2,
        "eval.max_eval_batches": 2,
        "data.max_chars": 200000,
    }
    result = hpo.train("experiments/lm_tiny.yaml", overrides, output=tmp_path / "trial", quiet=True)
    assert result.status == "complete" and result.steps == 4
    assert Path(result.best_checkpoint).is_file()
    saved = json.loads((tmp_path / "trial" / "result.json").read_text())
    assert saved["best_value"] == result.best_value
    config = (tmp_path / "trial" / "config.yaml").read_text()
    assert "weight_decay: 1.0e-05" in config
    with pytest.raises(hpo.errors.ConfigError, match="train.max_steps"):
        hpo.train("experiments/lm_tiny.yaml", {"train.max_steps": -1}, output=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_train_takes_a_config_dict_and_refuses_a_bad_one_before_any_folder(tmp_path):
    with pytest.raises(hpo.errors.ConfigError) as caught:
        hpo.train({"task": "lm", "train": {"max_steps": 0}}, output=tmp_path / "t")
    assert caught.value.key == "train.max_steps" or "train.max_steps" in str(caught.value)
    with pytest.raises(UsageError):
        hpo.train(["not", "a", "config"])
    assert not (tmp_path / "t").exists()


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README's Python API section has a python block"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_snippet_runs_as_written(tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(readme_snippet())
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "best" in proc.stdout
    assert (tmp_path / "runs" / "quickstart" / "summary.json").exists()


def test_import_hpo_and_its_api_names_stay_light():
    code = (
        "import sys, hpo\n"
        "hpo.search, hpo.train, hpo.errors.SpaceError, hpo.errors.UserInputError\n"
        "heavy = [m for m in ('torch', 'optuna', 'ray', 'mlflow', 'pandas') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def test_quiet_silences_other_libraries_for_the_call_and_gives_the_loggers_back(tmp_path):
    """hpo.search(quiet=True) is `hpo search --quiet` for the call: inside it a library's INFO
    records and warnings are dropped; after it the notebook has its own loggers back."""
    import logging
    import warnings

    mlflow_logger = logging.getLogger("mlflow")
    mlflow_logger.setLevel(logging.INFO)
    seen = {}

    def watch(params, reporter):
        seen[len(seen)] = (
            mlflow_logger.getEffectiveLevel(),
            warnings.showwarning.__name__,
        )
        return bowl(params, reporter)

    try:
        for quiet in (True, False):
            seen.clear()
            hpo.search(
                SPACE, watch, trials=1, study=f"q{quiet}", runs=tmp_path, track=False, quiet=quiet
            )
            level, sink = seen[0]
            if quiet:
                assert level == logging.ERROR and sink == "_drop_warning"
            else:
                assert level == logging.INFO and sink != "_drop_warning"
            assert mlflow_logger.level == logging.INFO, "the caller's level is back"
            assert warnings.showwarning.__name__ != "_drop_warning"
    finally:
        mlflow_logger.setLevel(logging.NOTSET)
