"""`hpo status` (the per-trial table, --json), `hpo best`, `hpo --version` and py.typed.

The studies are real: `hpo search` runs a plain objective (no training) in a subprocess, and
every command runs as the `hpo` a user types, its stdout a pipe (the plain table) or a real
pseudo-terminal (the rich table). What is expected is read back from the trial.json files.
"""

from __future__ import annotations

import json
import math
import os
import pty
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata, resources
from pathlib import Path

import pytest

from hpo.version import pyproject_version

ROOT = Path(__file__).parents[2]
OBJECTIVE = "tests.hpo.search_objectives:quadratic"
SPACE = """
objective: {{metric: val_loss, direction: {direction}}}
driver: {{seed: 0}}
params:
  train.learning_rate: {{type: float, low: 1.0e-4, high: 1.0e-2, log: true}}
  model.layers: {{type: int, low: 1, high: 4}}
"""
TIMEOUT = 120  # seconds: generous, the machine is shared
# a param value no terminal should obey: clear screen, OSC 52 (clipboard), a bidi override,
# and rich markup that must be printed, not read
HOSTILE = "[bold]x[/bold]\x1b[2J\x1b]52;c;aGk=\x07\u202e"


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def hpo(*args: str) -> subprocess.CompletedProcess[str]:
    """`hpo ARGS` in a subprocess, its stdout a pipe (not a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "hpo.cli", *args],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def make_study(base: Path, name: str, direction: str = "minimize") -> Path:
    space = base / f"{name}.yaml"
    space.write_text(SPACE.format(direction=direction))
    done = hpo(
        "search",
        "--space",
        str(space),
        "--objective",
        OBJECTIVE,
        "--no-track",
        "--quiet",
        "--trials",
        "3",
        "--driver",
        "random",
        "--study",
        name,
        "--runs",
        str(base / "runs"),
    )
    assert done.returncode == 0, done.stderr
    return base / "runs" / name


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    return make_study(tmp_path_factory.mktemp("status"), "quad")


def trial_files(study_dir: Path) -> list[dict]:
    trials = [json.loads(p.read_text()) for p in study_dir.glob("trials/*/trial.json")]
    return sorted(trials, key=lambda t: t["number"])


def best_of(trials: list[dict], direction: str) -> dict:
    complete = [t for t in trials if t["state"] == "complete"]
    pick = min if direction == "minimize" else max
    return pick(complete, key=lambda t: t["value"])


def copy_study(study_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "runs" / study_dir.name
    shutil.copytree(study_dir, copy)
    return copy


def add_trial(study_dir: Path, number: int, **fields) -> dict:
    record = {
        "number": number,
        "params": {"train.learning_rate": 1e-3, "model.layers": 2},
        "state": "complete",
        "value": 1.5,
        "values": [1.5],
        "reason": None,
        "duration": 2.25,
        "steps": 7,
        "started": 0.0,
        **fields,
    }
    folder = study_dir / "trials" / str(number)
    folder.mkdir(parents=True)
    (folder / "trial.json").write_text(json.dumps(record))
    return record


def table_rows(stdout: str) -> dict[int, list[str]]:
    """The table's rows by trial number, each split into its cells (params last, whole)."""
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["trial", "state"])
    assert lines[header].split() == ["trial", "state", "value", "steps", "duration", "params"]
    rows = {}
    for line in lines[header + 1 :]:
        if not line:  # the table ends; why trials ended early follows
            break
        cells = line.split(maxsplit=5)
        rows[int(cells[0])] = cells
    return rows


def expected_params(params: dict) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


# ----------------------------------------------------------------------------- hpo status


def test_status_prints_the_counts_then_a_row_per_trial(study):
    done = hpo("status", str(study))
    assert done.returncode == 0, done.stderr
    trials = trial_files(study)
    assert len(trials) == 3
    lines = done.stdout.splitlines()
    assert lines[0] == "study quad (random)"
    assert "  complete    3" in lines and "  failed      0" in lines
    best = best_of(trials, "minimize")
    assert f"  best      trial {best['number']}: val_loss {best['value']:.6g} (minimize)" in lines
    rows = table_rows(done.stdout)
    assert sorted(rows) == [t["number"] for t in trials]
    for trial in trials:
        assert rows[trial["number"]] == [
            str(trial["number"]),
            "complete",
            f"{trial['value']:.6g}",
            str(trial["steps"]),
            f"{trial['duration']:.1f}s",
            expected_params(trial["params"]),
        ]
    assert all(line == line.rstrip() for line in lines), "no trailing spaces in plain text"


def test_status_table_shows_every_state_and_several_values(study, tmp_path):
    copy = copy_study(study, tmp_path)
    add_trial(copy, 3, state="failed", value=None, values=None, reason="diverged", steps=0)
    add_trial(copy, 4, state="pruned", value=0.25, values=[0.25], steps=3, duration=61.04)
    done = hpo("status", str(copy))
    assert done.returncode == 0, done.stderr
    rows = table_rows(done.stdout)
    assert rows[3][:5] == ["3", "failed", "-", "0", "2.2s"]
    assert rows[4][:5] == ["4", "pruned", "0.25", "3", "61.0s"]
    assert rows[4][5] == "train.learning_rate=0.001 model.layers=2"
    assert "  failed      1" in done.stdout and "  pruned      1" in done.stdout
    assert done.stdout.splitlines()[-1] == "  trial 3 failed: diverged", "why it failed, under it"


def test_status_json_is_one_document_that_matches_the_trial_files(study):
    done = hpo("status", str(study), "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # the whole of stdout: nothing else is printed
    trials = trial_files(study)
    assert document["study"] == "quad" and document["driver"] == "random"
    assert document["objective"] == {"metric": "val_loss", "direction": "minimize"}
    assert document["objectives"] == [document["objective"]]
    assert document["counts"] == {
        "running": 0,
        "complete": 3,
        "pruned": 0,
        "failed": 0,
        "interrupted": 0,
    }
    assert document["run_by"] is None
    fields = ("number", "state", "value", "values", "steps", "duration", "params", "reason")
    assert [{k: t[k] for k in fields} for t in document["trials"]] == [
        {k: t[k] for k in fields} for t in trials
    ]
    best = best_of(trials, "minimize")
    assert document["best"]["number"] == best["number"]
    assert document["best"]["value"] == best["value"]
    assert document["best"]["params"] == best["params"]


def test_status_json_of_a_study_without_trials(tmp_path):
    study_dir = tmp_path / "runs" / "empty"
    study_dir.mkdir(parents=True)
    (study_dir / "study.yaml").write_text(
        "study: empty\ndriver: optuna\nspace:\n  params: {}\n"
        "  objective: {metric: acc, direction: maximize}\n"
    )
    document = json.loads(hpo("status", "empty", "--runs", str(tmp_path / "runs"), "--json").stdout)
    assert document["trials"] == [] and document["best"] is None
    assert document["objective"] == {"metric": "acc", "direction": "maximize"}
    plain = hpo("status", str(study_dir))
    assert plain.returncode == 0 and plain.stdout.rstrip().endswith("no trials yet")


def test_status_json_has_no_nan_a_strict_parser_refuses(study, tmp_path):
    copy = copy_study(study, tmp_path)
    folder = copy / "trials" / "3"
    folder.mkdir()
    # json.dumps writes NaN; load_trial accepts it (a diverged objective may report it)
    (folder / "trial.json").write_text(
        json.dumps({"number": 3, "params": {}, "state": "pruned", "values": [math.nan]})
    )
    done = hpo("status", str(copy), "--json")
    assert done.returncode == 0, done.stderr

    def refuse(constant):
        raise AssertionError(f"not strict JSON: {constant}")

    document = json.loads(done.stdout, parse_constant=refuse)
    assert document["trials"][3]["value"] is None and document["trials"][3]["values"] == [None]


def test_status_and_best_escape_what_a_trial_file_holds(study, tmp_path):
    copy = copy_study(study, tmp_path)
    add_trial(copy, 3, params={"train.learning_rate": HOSTILE}, value=-1.0, values=[-1.0])
    for argv in (["status", str(copy)], ["best", str(copy)]):
        done = hpo(*argv)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout
        assert "\u202e" not in done.stdout
        assert "[bold]x[/bold]\\x1b[2J\\x1b]52;c;aGk=\\x07\\u202e" in done.stdout
    done = hpo("status", str(copy), "--json")
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout
    assert json.loads(done.stdout)["trials"][3]["params"]["train.learning_rate"] == HOSTILE


def test_status_json_to_a_closed_pipe_ends_quietly(study):
    # `hpo status --json | head -c0`: the reader is gone before hpo writes (no race: the read
    # end is closed before the child can print anything)
    process = subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "status", str(study), "--json"],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    process.stdout.close()
    assert process.wait(timeout=TIMEOUT) == 141  # 128 + SIGPIPE, as `head` users expect
    assert process.stderr.read() == b"", "no internal error, no traceback"
    process.stderr.close()


def run_on_a_terminal(*args: str) -> str:
    """`hpo ARGS` with its stdout a real pseudo-terminal 200 columns wide; what it printed."""
    main, child = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "hpo.cli", *args],
            cwd=ROOT,
            env={**env(), "COLUMNS": "200", "LINES": "50", "TERM": "xterm-256color"},
            stdin=subprocess.DEVNULL,
            stdout=child,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: the child's side is closed, all is read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    assert process.wait(timeout=TIMEOUT) == 0, process.stderr.read()
    process.stderr.close()
    return b"".join(chunks).decode()


def test_status_on_a_terminal_draws_the_table_with_rich_and_escapes_it(study, tmp_path):
    pytest.importorskip("rich", reason="the rich table is drawn only where rich is installed")
    copy = copy_study(study, tmp_path)
    add_trial(copy, 3, params={"train.learning_rate": HOSTILE})
    shown = run_on_a_terminal("status", str(copy))
    assert "\x1b[1mtrial" in shown, "rich drew it: its header is bold"
    assert "\x1b[2J" not in shown and "\x1b]52" not in shown and "\u202e" not in shown
    assert "[bold]x[/bold]\\x1b[2J" in shown, "markup printed as it is, escapes escaped"
    for trial in trial_files(study):
        assert f"{trial['value']:.6g}" in shown
        assert f"train.learning_rate={trial['params']['train.learning_rate']:.4g}" in shown


@pytest.mark.parametrize("argv", [["status", "--json"], ["status"], ["best"]])
def test_a_damaged_trial_file_is_still_one_line_and_exit_2(study, tmp_path, argv):
    copy = copy_study(study, tmp_path)
    (copy / "trials" / "1" / "trial.json").write_text('{"number": 1, "params": {}, "state": 7}')
    done = hpo(argv[0], str(copy), *argv[1:])
    assert done.returncode == 2
    assert done.stdout == "", "nothing printed before the error (no half a JSON document)"
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpo: error: ")
    assert "trials/1/trial.json: damaged: 'state' is 7" in lines[0]


# ----------------------------------------------------------------------------- hpo best


def test_best_names_the_metric_and_its_direction(study):
    done = hpo("best", str(study))
    assert done.returncode == 0, done.stderr
    best = best_of(trial_files(study), "minimize")
    lines = done.stdout.splitlines()
    assert (
        lines[0]
        == f"study quad: best trial {best['number']}: val_loss {best['value']:.6g} (minimize)"
    )
    assert f"  train.learning_rate = {best['params']['train.learning_rate']}" in lines
    assert "retrain" not in done.stdout, "a plain objective writes no config.yaml to retrain"


def test_best_of_a_maximized_study_is_the_largest_value(tmp_path):
    study_dir = make_study(tmp_path, "up", direction="maximize")
    best = best_of(trial_files(study_dir), "maximize")
    done = hpo("best", "up", "--runs", str(tmp_path / "runs"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"study up: best trial {best['number']}: val_loss {best['value']:.6g} (maximize)"
    )
    document = json.loads(hpo("status", str(study_dir), "--json").stdout)
    assert document["best"]["number"] == best["number"]
    assert document["objective"]["direction"] == "maximize"


# ----------------------------------------------------------------------------- --version


def test_version_prints_hpo_and_the_installed_version():
    done = hpo("--version")
    assert done.returncode == 0
    assert done.stdout == f"hpo {metadata.version('hpo')}\n" and done.stderr == ""


def test_version_without_installed_metadata_is_the_pyproject_one():
    # a checkout run with PYTHONPATH only: no dist-info on sys.path
    code = (
        "import sys; sys.path = [p for p in sys.path if 'site-packages' not in p]; "
        "from hpo.version import hpo_version; print(hpo_version())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr
    with (ROOT / "pyproject.toml").open("rb") as file:
        assert done.stdout == tomllib.load(file)["project"]["version"] + "\n"


def test_pyproject_version_of_a_missing_or_versionless_file(tmp_path):
    assert pyproject_version(tmp_path / "nope.toml") is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert pyproject_version(tmp_path / "pyproject.toml") is None
    (tmp_path / "pyproject.toml").write_text("[project\n")
    assert pyproject_version(tmp_path / "pyproject.toml") is None


# ----------------------------------------------------------------------------- py.typed


@pytest.mark.parametrize("package", ["hpo", "runner"])
def test_py_typed_marks_the_package(package):
    assert resources.files(package).joinpath("py.typed").is_file()


def test_the_wheel_ships_py_typed(tmp_path):
    # the package data as setuptools builds it, from a copy of the sources (no build/ here)
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("hpo", "runner"):
        shutil.copytree(ROOT / package, source / package, ignore=ignore)
    built = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))",
            str(tmp_path / "dist"),
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = tmp_path / "dist" / built.stdout.strip().splitlines()[-1]
    names = zipfile.ZipFile(wheel).namelist()
    assert "hpo/py.typed" in names and "runner/py.typed" in names
