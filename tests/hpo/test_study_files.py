"""A study's files: damaged ones are refused naming the file; a full disk or a kill -9 never
costs the old best/ (hpo.study)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import hpo.study
import hpo.study_best
from hpo.cli import main
from hpo.study import StudyFileError, load_trials, promote_best, read_study, recover_best
from runner.files import StorageError, atomic_write_json

ROOT = Path(__file__).parents[2]
OBJECTIVE = "tests.hpo.test_study_files:checkpointed"
SPACE = """
objective: {metric: val_loss, direction: minimize}
driver: {seed: 0}
params:
  x: {type: float, low: 0.0, high: 1.0}
"""
DEADLINE = 120.0


def checkpointed(params, reporter):
    """Later trials are better; each writes a best checkpoint of $HPO_TEST_CKPT_BYTES bytes.

    The trial numbered $HPO_TEST_FILL_AT first fills the disk of $HPO_TEST_FILLER, leaving
    about $HPO_TEST_LEAVE bytes free (summary.json fits; a checkpoint does not).
    """
    checkpoints = reporter.dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    size = int(os.environ.get("HPO_TEST_CKPT_BYTES", "1000"))
    (checkpoints / "best.pt").write_bytes(bytes([reporter.number % 256]) * size)
    if str(reporter.number) == os.environ.get("HPO_TEST_FILL_AT"):
        fill(Path(os.environ["HPO_TEST_FILLER"]), int(os.environ["HPO_TEST_LEAVE"]))
    return 10.0 - reporter.number


def fill(filler: Path, leave: int) -> None:
    """Write `filler` until the disk is full, then free `leave` bytes of it."""
    with filler.open("wb", buffering=0) as handle:  # unbuffered: nothing left to flush
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    with filler.open("r+b") as handle:
        handle.truncate(max(0, filler.stat().st_size - leave))


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MB tmpfs (skips when this process may not mount one)."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a real full disk: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def make_trial(study: Path, number: int, payload: bytes) -> None:
    trial = study / "trials" / str(number)
    (trial / "checkpoints").mkdir(parents=True)
    (trial / "checkpoints" / "best.pt").write_bytes(payload)
    (trial / "config.yaml").write_text(f"trial: {number}\n")
    atomic_write_json(
        trial / "trial.json",
        {"number": number, "params": {"x": 0.5}, "state": "complete", "values": [1.0]},
    )


# ----------------------------------------------------------------------------- best/ on a full disk


def test_promoting_on_a_full_disk_keeps_the_old_best_and_says_so_in_one_line(small_disk):
    study = small_disk / "s"
    make_trial(study, 0, b"\0" * 1_000_000)
    make_trial(study, 1, b"\1" * 1_000_000)
    promote_best(study, 0)
    fill(small_disk / "filler", 100_000)  # room for config.yaml, not for a checkpoint
    with pytest.raises(StorageError) as failure:
        promote_best(study, 1)
    message = str(failure.value)
    assert message == f"no space left on device while writing {study / 'best' / 'best.pt'}"
    assert (study / "best" / "best.pt").read_bytes() == b"\0" * 1_000_000
    assert (study / "best" / "config.yaml").read_text() == "trial: 0\n"
    assert sorted(p.name for p in study.iterdir()) == ["best", "trials"], "no leftovers"
    (small_disk / "filler").unlink()
    promote_best(study, 1)  # room again: the new best/ replaces the old
    assert (study / "best" / "best.pt").read_bytes() == b"\1" * 1_000_000


@pytest.mark.slow
def test_a_search_that_fills_the_disk_stops_with_one_line_and_keeps_the_old_best(small_disk):
    space = small_disk.parent / "space.yaml"
    space.write_text(SPACE)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HPO_TEST_CKPT_BYTES": "700000",
        "HPO_TEST_FILLER": str(small_disk / "filler"),
        "HPO_TEST_LEAVE": "200000",
    }
    args = ["search", "--space", str(space), "--study", "s", "--runs", str(small_disk)]
    args += ["--objective", OBJECTIVE, "--no-track", "--quiet"]

    def search(*more: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "hpo.cli", *args, *more],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=DEADLINE,
        )

    first = search("--trials", "2")
    assert first.returncode == 0, first.stderr
    study = small_disk / "s"
    assert (study / "best" / "best.pt").read_bytes() == b"\1" * 700_000
    resumed = search("--trials", "3", "--resume", HPO_TEST_FILL_AT="2")
    lines = resumed.stderr.strip().splitlines()
    assert resumed.returncode == 1 and len(lines) == 1, resumed.stderr
    assert lines[0] == (
        f"hpo: error: no space left on device while writing {study / 'best' / 'best.pt'}"
    )
    assert (study / "best" / "best.pt").read_bytes() == b"\1" * 700_000, "the old best/ stays"
    summary = json.loads((study / "summary.json").read_text())  # small: it still fitted
    assert summary["best_trial"] == 2 and summary["n_trials"]["complete"] == 3
    assert not list(study.glob("best.*")), "no half-built best/ left"


@pytest.mark.slow
def test_a_search_whose_disk_fills_during_a_trial_stops_with_one_line_and_resumes(small_disk):
    space = small_disk.parent / "space.yaml"
    space.write_text(SPACE)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HPO_TEST_FILLER": str(small_disk / "filler"),
        "HPO_TEST_LEAVE": "0",
    }
    args = [sys.executable, "-m", "hpo.cli", "search", "--space", str(space), "--study", "s"]
    args += ["--runs", str(small_disk), "--objective", OBJECTIVE, "--no-track", "--quiet"]
    full = subprocess.run(
        [*args, "--trials", "4"],
        cwd=ROOT,
        env={**env, "HPO_TEST_FILL_AT": "1"},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    study = small_disk / "s"
    assert full.returncode == 1 and full.stderr.strip().splitlines() == [
        f"hpo: error: no space left on device while writing {study / 'trials/1/trial.json'}"
    ], full.stderr
    (small_disk / "filler").unlink()
    resumed = subprocess.run(
        [*args, "--trials", "4", "--resume"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert resumed.returncode == 0, resumed.stderr  # the journal and every file still read
    # the trial whose trial.json could not be written was left running: --resume continues it
    # (same number, same params) instead of failing it, so the budget ends with 4 trials
    states = [r.state for r in load_trials(study)]
    assert states == ["complete"] * 4, states


def test_a_journal_append_on_a_full_disk_leaves_the_journal_readable(small_disk):
    from hpo.drivers.optuna_driver.storage import journal_backend

    path = small_disk / "optuna.journal"
    journal = journal_backend(path)
    journal.append_logs([{"op_code": 0, "worker_id": "w", "n": 0}])
    size = path.stat().st_size
    fill(small_disk / "filler", 0)
    with pytest.raises(StorageError, match=f"^no space left on device while writing {path}$"):
        journal.append_logs([{"op_code": 0, "worker_id": "w", "big": "x" * 20_000}])
    assert path.stat().st_size == size, "the half-written line is cut back"
    (small_disk / "filler").unlink()
    journal.append_logs([{"op_code": 0, "worker_id": "w", "n": 1}])
    assert [log.get("n") for log in journal_backend(path).read_logs(0)] == [0, 1]


# ----------------------------------------------------------------------------- best/ and kill -9

PROMOTER = """
import sys
from pathlib import Path
from hpo.study import promote_best
study = Path(sys.argv[1])
n = 0
while True:
    promote_best(study, n % 2)
    n += 1
    if n == 3:
        print("promoting", flush=True)
"""


def test_kill_9_while_promoting_always_leaves_a_whole_best(tmp_path):
    study = tmp_path / "s"
    contents = {n: bytes([n]) * 3_000_000 for n in (0, 1)}
    for n, payload in contents.items():
        make_trial(study, n, payload)
    for round_ in range(5):
        promoter = subprocess.Popen(
            [sys.executable, "-c", PROMOTER, str(study)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert promoter.stdout.readline().strip() == "promoting"
        time.sleep(0.01 * round_)  # kill at a different point of the copy-fsync-swap cycle
        promoter.send_signal(signal.SIGKILL)
        promoter.wait()
        recover_best(study)  # what the next promote (or --resume) does first
        best = study / "best"
        number = int((best / "config.yaml").read_text().split()[-1])
        assert (best / "best.pt").read_bytes() == contents[number]
        assert json.loads((best / "trial.json").read_text())["number"] == number
        assert sorted(p.name for p in study.iterdir()) == ["best", "trials"]


def test_a_kill_between_the_two_renames_of_the_fallback_swap_is_undone(tmp_path):
    # where the filesystem cannot exchange two folders, the old best/ is renamed away first
    study = tmp_path / "s"
    make_trial(study, 0, b"old")
    promote_best(study, 0)
    os.rename(study / "best", study / "best.old-4242")  # killed here
    (study / "best.tmp-4242").mkdir()  # with the new one half built
    recover_best(study)
    assert (study / "best" / "best.pt").read_bytes() == b"old"
    assert sorted(p.name for p in study.iterdir()) == ["best", "trials"]


def test_the_fallback_swap_replaces_best(tmp_path, monkeypatch):
    monkeypatch.setattr(hpo.study_best, "_exchange", lambda first, second: False)
    study = tmp_path / "s"
    make_trial(study, 0, b"old")
    make_trial(study, 1, b"new")
    promote_best(study, 0)
    promote_best(study, 1)
    assert (study / "best" / "best.pt").read_bytes() == b"new"
    assert sorted(p.name for p in study.iterdir()) == ["best", "trials"]


# ----------------------------------------------------------------------------- damaged files


@pytest.fixture
def study(tmp_path, monkeypatch):
    """A finished 2-trial study under tmp_path/runs/s; the CLI runs from the project root."""
    monkeypatch.chdir(ROOT)
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    code = main(
        ["search", "--space", str(space), "--study", "s", "--runs", str(tmp_path / "runs")]
        + ["--objective", OBJECTIVE, "--no-track", "--quiet", "--trials", "2"]
    )
    assert code == 0
    return tmp_path / "runs" / "s"


def one_line_error(capsys, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hpo: error: "), err
    return err[0]


def resume(study: Path) -> list[str]:
    space = study.parent.parent / "space.yaml"
    return ["search", "--space", str(space), "--study", "s", "--runs", str(study.parent)] + [
        "--objective",
        OBJECTIVE,
        "--no-track",
        "--quiet",
        "--trials",
        "3",
        "--resume",
    ]


DAMAGE = {
    "empty": "",
    "cut short": '{"number": 1, "params": {"x": 0.',
    "not an object": "[1, 2]",
    "wrong type": '{"number": "one", "params": {}, "state": "complete"}',
    "unknown state": '{"number": 1, "params": {}, "state": "exploded"}',
    "values not numbers": '{"number": 1, "params": {}, "state": "complete", "values": ["a"]}',
    "not utf-8": "\udcff",
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_trial_json_is_refused_naming_it(study, capsys, damage):
    path = study / "trials" / "1" / "trial.json"
    path.write_bytes(DAMAGE[damage].encode("utf-8", "surrogateescape"))
    before = {p: p.stat().st_mtime_ns for p in study.rglob("*") if p.is_file()}
    for argv in (["status", str(study)], ["best", str(study)], resume(study)):
        line = one_line_error(capsys, *argv)
        assert line.startswith(f"hpo: error: {path}: "), line
    after = {p: p.stat().st_mtime_ns for p in study.rglob("*") if p.is_file()}
    assert after == before, "a refused --resume changes nothing"
    with pytest.raises(StudyFileError, match=str(path)):
        load_trials(study)


@pytest.mark.parametrize(
    "text", ["", "study: [unclosed\n", "- a list\n", "study: s\n", "study: s\nstudy: t\n"]
)
def test_a_damaged_study_yaml_is_refused_naming_it(study, capsys, text):
    path = study / "study.yaml"
    path.write_text(text)
    for argv in (["status", str(study)], ["best", str(study)], resume(study)):
        line = one_line_error(capsys, *argv)
        assert line.startswith(f"hpo: error: {path}"), line
    assert path.read_text() == text


@pytest.mark.parametrize("text", ["", "{", '{"wall_seconds": "long"}'])
def test_a_damaged_summary_json_is_refused_naming_it(study, capsys, text):
    path = study / "summary.json"
    path.write_text(text)
    for argv in (["status", str(study)], resume(study)):
        line = one_line_error(capsys, *argv)
        assert line.startswith(f"hpo: error: {path}: "), line
    assert path.read_text() == text
    assert not (study / "trials" / "2").exists(), "--resume ran no trial"


def test_study_files_are_written_through_runner_files(study):
    # runner.files writes a temporary file, fsyncs it and renames it: no temporaries remain
    assert hpo.study.write_json is atomic_write_json
    assert hpo.study.atomic_write_text.__module__ == "runner.files"
    assert not [p for p in study.rglob("*.tmp")]
    status = read_study(study)
    assert status.counts["complete"] == 2 and status.summary["best_trial"] == 1


def test_a_readable_study_still_resumes(study, capsys):
    assert main(resume(study)) == 0
    assert read_study(study).counts["complete"] == 3


# ----------------------------------------------------------------------------- the study's wall time


def summary_of(study: Path) -> dict:
    return json.loads((study / "summary.json").read_text())


def test_a_resumed_study_adds_its_earlier_runs_wall_time(study):
    summary = summary_of(study)
    summary["wall_seconds"] = 1000.0  # an earlier run that took long
    atomic_write_json(study / "summary.json", summary)
    assert main(resume(study)) == 0
    assert 1000.0 < summary_of(study)["wall_seconds"] < 1100.0


def test_a_summary_left_without_its_trials_adds_nothing(study):
    # what DVC leaves in a fresh clone: the search stage's summary.json (persist), no trials
    summary = summary_of(study)
    summary["wall_seconds"] = 1000.0
    for left in study.iterdir():
        if left.name != "summary.json":
            shutil.rmtree(left) if left.is_dir() else left.unlink()
    atomic_write_json(study / "summary.json", summary)
    assert main(resume(study)) == 0
    after = summary_of(study)
    assert sum(after["n_trials"].values()) == 3, "a new study of 3 trials ran"
    assert after["wall_seconds"] < 100.0, "no earlier run's time in a new study's summary"
