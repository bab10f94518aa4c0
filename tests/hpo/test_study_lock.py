"""One study, one driver: a second `hpo search` of a running study is refused (hpo.study_lock).

Real `hpo search` processes run an objective that holds its trial until the test creates a
release file; the test waits for files, never for a fixed time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpo.drivers.base import StudySpec
from hpo.study_lock import LOCK_NAME, FileLock, Holder, StudyBusyError, hold_study
from runner.errors import UserInputError

ROOT = Path(__file__).parents[2]
OBJECTIVE = "tests.hpo.test_study_lock:held_until_released"
SPACE = """
objective: {metric: val_loss, direction: minimize}
driver: {seed: 0, optuna: {pruner: none}}
params:
  x: {type: float, low: 0.0, high: 1.0}
"""
DEADLINE = 120.0  # seconds: generous, the machine is shared


def held_until_released(params, reporter):
    """Marks its trial started, then waits for $HPO_TEST_RELEASE to exist."""
    (reporter.dir / "started").touch()
    release = Path(os.environ["HPO_TEST_RELEASE"])
    deadline = time.monotonic() + 300
    while not release.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return params["x"]


def hpo(tmp_path: Path, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HPO_TEST_RELEASE": str(tmp_path / "release"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def search_args(tmp_path: Path, runs: str, storage: str | None, *more: str) -> list[str]:
    space = tmp_path / "held.yaml"
    space.write_text(SPACE)
    args = ["search", "--space", str(space), "--study", "held", "--runs", str(tmp_path / runs)]
    args += ["--objective", OBJECTIVE, "--no-track", "--quiet", *more]
    return args + (["--storage", storage] if storage else [])


def wait_for(condition, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the process ended ({process.returncode}) before {what}: {out}{err}")
        assert time.monotonic() < deadline, f"waited {DEADLINE:g} s for {what}"
        time.sleep(0.05)


def refused(process: subprocess.Popen) -> str:
    """The one line of a process refused with exit 2."""
    started = time.monotonic()
    out, err = process.communicate(timeout=DEADLINE)
    lines = err.strip().splitlines()
    assert process.returncode == 2, (out, err)
    assert len(lines) == 1 and lines[0].startswith("hpo: error: "), err
    assert time.monotonic() - started < DEADLINE
    return lines[0]


def storage_url(kind: str, tmp_path: Path, request) -> str | None:
    if kind == "journal":
        return None
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'optuna.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.mark.parametrize(
    "kind",
    ["journal", "sqlite", "random", pytest.param("postgresql", marks=pytest.mark.service)],
)
@pytest.mark.slow
def test_a_second_search_is_refused_at_once_and_a_killed_ones_lock_is_taken_over(
    kind, tmp_path, request
):
    storage = None if kind == "random" else storage_url(kind, tmp_path, request)
    driver = ["--driver", "random" if kind == "random" else "optuna"]
    study = tmp_path / "runs" / "held"
    first = hpo(tmp_path, *search_args(tmp_path, "runs", storage, "--trials", "2", *driver))
    try:
        wait_for(lambda: (study / "trials" / "0" / "started").exists(), "trial 0", first)
        # the same folder, as a second `dvc repro` or `--resume` would
        again = search_args(tmp_path, "runs", storage, "--resume", *driver)
        line = refused(hpo(tmp_path, *again))
        assert f"{study}: study held is being run by process {first.pid} on host " in line
        assert line.endswith("wait for it or stop it")
        if storage:  # the same study on the database, from another folder
            line = refused(hpo(tmp_path, *search_args(tmp_path, "elsewhere", storage)))
            assert f"is being run by process {first.pid} on host " in line
            assert "hpo worker --storage URL --study held" in line
            assert not (tmp_path / "elsewhere").exists(), "a refused search creates nothing"
        assert first.poll() is None, "the running search goes on"
    finally:
        first.kill()
    first.wait()
    assert (study / LOCK_NAME).exists()  # left by kill -9: the next search takes it over

    # the resumed search continues the killed trial 0 (a journal study), or queues its params
    # again as trial 1 (a database study): either starts a trial anew
    (study / "trials" / "0" / "started").unlink()
    resume = search_args(tmp_path, "runs", storage, "--trials", "2", "--resume", *driver)
    second = hpo(tmp_path, *resume)
    wait_for(lambda: any(study.glob("trials/*/started")), "the resumed trial", second)
    (tmp_path / "release").touch()
    out, err = second.communicate(timeout=DEADLINE)
    assert second.returncode == 0, (out, err)
    assert not (study / LOCK_NAME).exists(), "a search removes its lock file when it ends"


@pytest.mark.slow
def test_hpo_worker_joins_a_database_study_that_a_search_runs(tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    search = hpo(tmp_path, *search_args(tmp_path, "runs", storage, "--trials", "3"))
    try:
        wait_for(
            lambda: (tmp_path / "runs" / "held" / "trials" / "0" / "started").exists(),
            "trial 0",
            search,
        )
        worker = hpo(
            tmp_path,
            *["worker", "--storage", storage, "--study", "held", "--runs", str(tmp_path / "w1")],
            *["--no-track", "--quiet"],
        )
        wait_for(
            lambda: any((tmp_path / "w1" / "held" / "trials").glob("*/started")),
            "a trial of the worker",
            worker,
        )
        (tmp_path / "release").touch()
        for process in (search, worker):
            out, err = process.communicate(timeout=DEADLINE)
            assert process.returncode == 0, (out, err)
    finally:
        search.kill()


def test_a_held_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    path = tmp_path / LOCK_NAME
    me = Holder.me()
    lock = FileLock.acquire(path, me)
    assert lock is not None
    assert FileLock.acquire(path, Holder.me()) is None  # another open file: refused
    assert FileLock.holder_of(path) == me
    lock.release()
    assert not path.exists()
    again = FileLock.acquire(path, Holder.me())
    assert again is not None
    again.release()


def test_a_lock_file_left_by_a_dead_process_is_taken_over(tmp_path):
    path = tmp_path / LOCK_NAME
    path.write_text(Holder(999_999_999, "gone", 0.0).to_json())  # no flock holds it
    lock = FileLock.acquire(path, Holder.me())
    assert lock is not None and FileLock.holder_of(path).pid == os.getpid()
    lock.release()


def test_a_study_that_never_started_leaves_no_folder_behind(tmp_path):
    study = StudySpec(name="s", dir=tmp_path / "runs" / "s")
    with pytest.raises(UserInputError, match="bad"):
        with hold_study(study, "random"):
            assert (study.dir / LOCK_NAME).exists()
            raise UserInputError("bad")
    assert not (tmp_path / "runs").exists()
    with hold_study(study, "random"):
        (study.dir / "study.yaml").write_text("study: s\n")
    assert (study.dir / "study.yaml").exists() and not (study.dir / LOCK_NAME).exists()


def test_the_holder_of_the_folder_is_named_in_the_refusal(tmp_path):
    study = StudySpec(name="s", dir=tmp_path / "runs" / "s")
    with hold_study(study, "random") as me:
        with pytest.raises(StudyBusyError) as refusal:
            with hold_study(study, "random"):
                pass
    assert str(refusal.value).startswith(f"{study.dir}: study s is being run by process ")
    assert f"process {me.pid} on host {me.host} since " in str(refusal.value)


def test_status_names_the_process_that_runs_the_study(tmp_path, capsys):
    from hpo.cli import main

    study = StudySpec(name="s", dir=tmp_path / "runs" / "s")
    with hold_study(study, "random") as me:
        (study.dir / "study.yaml").write_text(
            "study: s\ndriver: random\nspace:\n  params: {}\n"
            "  objective: {metric: loss, direction: minimize}\n"
        )
        assert main(["status", str(study.dir)]) == 0
        assert f"run by    process {me.pid} on host {me.host}" in capsys.readouterr().out
    assert main(["status", str(study.dir)]) == 0
    assert "run by" not in capsys.readouterr().out
    # a lock file left by a process of this host that is gone (kill -9) is not a holder
    (study.dir / LOCK_NAME).write_text(Holder(999_999_999, me.host, 0.0).to_json())
    assert main(["status", str(study.dir)]) == 0
    assert "run by" not in capsys.readouterr().out


def test_a_sqlite_study_is_held_from_another_folder_too(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    here = StudySpec(name="s", dir=tmp_path / "a" / "s", storage=url)
    there = StudySpec(name="s", dir=tmp_path / "b" / "s", storage=url)
    other = StudySpec(name="t", dir=tmp_path / "b" / "t", storage=url)
    with hold_study(here, "optuna"):
        with pytest.raises(StudyBusyError, match=f"study s in {url} is being run by process"):
            with hold_study(there, "optuna"):
                pass
        with hold_study(other, "optuna"):  # another study of the same database runs
            pass
    with hold_study(there, "optuna"):
        pass


@pytest.mark.service
def test_a_postgresql_lock_ends_with_its_session(tmp_path, postgres_url):
    # a process that takes the lock and is killed: the server ends its session and the lock
    code = (
        "import sys, time; from pathlib import Path\n"
        "from hpo.drivers.base import StudySpec; from hpo.study_lock import hold_study\n"
        f"spec = StudySpec(name='s', dir=Path({str(tmp_path / 'a' / 's')!r}), "
        f"storage={postgres_url!r})\n"
        "with hold_study(spec, 'optuna'):\n"
        "    print('held', flush=True); time.sleep(300)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        there = StudySpec(name="s", dir=tmp_path / "b" / "s", storage=postgres_url)
        with pytest.raises(StudyBusyError, match=f"by process {holder.pid} on host "):
            with hold_study(there, "optuna"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    deadline = time.monotonic() + DEADLINE
    while True:  # the server notices the closed connection at once; allow for a slow machine
        try:
            with hold_study(there, "optuna"):
                break
        except StudyBusyError:
            assert time.monotonic() < deadline, "the killed process's lock was never released"
            time.sleep(0.2)


@pytest.mark.parametrize(
    "url",
    ["postgresql://postgres@127.0.0.1:1/nowhere", "nosuchdb://x", "sqlite:///no/such/dir/x.db"],
)
def test_a_database_that_cannot_be_reached_is_one_line_and_leaves_nothing(tmp_path, capsys, url):
    from hpo.cli import main

    space = tmp_path / "held.yaml"
    space.write_text(SPACE)
    code = main(
        ["search", "--space", str(space), "--runs", str(tmp_path / "runs"), "--storage", url]
        + ["--objective", "tests.hpo.search_objectives:quadratic", "--no-track", "--quiet"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("hpo: error: "), err
    assert not (tmp_path / "runs").exists()
