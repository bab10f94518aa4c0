"""The tracking server goes away mid-study: training goes on, every metric arrives once, later.

Against a real `mlflow server` (tests/hpo/mlflow_server.py), killed and restarted on the same
port and backend, or hung with SIGSTOP: first a tracker driven directly, then whole `hpo search`
processes whose plain-function objective (search_objectives.gated_steps) waits at files the
test removes, so the server fails between given trials and never at a time guessed by a sleep.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow_server import shared_server

from hpo.drivers.base import StudySpec, TrialRecord
from hpo.study import finish_study, open_study, previous_trials, write_trial
from hpo.tracking import MlflowTracker
from hpo.tracking.pending import PENDING_FILE, PendingJournal, count

pytestmark = pytest.mark.service


@pytest.fixture
def server():
    return shared_server()


@pytest.fixture(autouse=True)
def fail_fast(monkeypatch):
    """One attempt per request: the tracker's buffer does the retrying (MLflow's own default is 7
    attempts with a growing delay, which only makes an outage take longer to notice)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")


def start(server, space, tmp_path, experiment, resume=False):
    tracker = MlflowTracker(
        server.uri,
        experiment_name=experiment,
        system_metrics=False,
        flush_interval=0.1,
        close_timeout=2.0,
    )
    study = StudySpec.for_space(space, name="s", runs=tmp_path / "runs", resume=resume)
    open_study(study, space, "random", previous_trials(study, space))
    tracker.start_study(space, study, "random")
    return tracker, study


def log_steps(tracker, number, steps):
    for step in steps:
        tracker.log_metrics(number, step, {"loss": 1.0 / (step + 1), "lr": 1e-3})


def end(tracker, study, number, steps):
    record = TrialRecord(
        number, {"lr": 0.01, "y": 0.1}, "complete", values=[1.0], steps=steps, started=time.time()
    )
    write_trial(study.dir, record)
    tracker.end_trial(record)


def assert_each_step_once(server, experiment, trials, steps):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server.uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], "tags.`hpo.trial` != ''")
    assert sorted(int(r.data.tags["hpo.trial"]) for r in runs) == trials
    for run in runs:
        for key in ("loss", "lr"):
            history = client.get_metric_history(run.info.run_id, key)
            assert sorted(m.step for m in history) == list(steps), (run.info.run_name, key)
        assert run.info.status == "FINISHED"


def test_metrics_logged_while_the_server_is_down_arrive_once_when_it_is_back(
    server, make_space, tmp_path
):
    space = make_space("random", trials=2)
    tracker, study = start(server, space, tmp_path, "outage")
    tracker.start_trial(0, {"lr": 0.01, "y": 0.1})
    log_steps(tracker, 0, range(0, 100))
    assert tracker.flush(30)

    server.stop()
    began = time.perf_counter()
    log_steps(tracker, 0, range(100, 200))
    tracker.start_trial(1, {"lr": 0.02, "y": 0.2})  # a trial that starts during the outage
    log_steps(tracker, 1, range(0, 200))
    end(tracker, study, 0, 199)
    assert time.perf_counter() - began < 1.0  # training never waits for the store
    assert not tracker.flush(1.0) and tracker.buffer.in_outage

    server.start()
    assert tracker.flush(60)
    end(tracker, study, 1, 199)
    tracker.end_study(finish_study(study, space, "random", 1.0, "budget"))
    assert_each_step_once(server, "outage", [0, 1], range(200))


def test_what_the_end_of_a_study_could_not_send_is_sent_when_it_resumes(
    server, make_space, tmp_path
):
    space = make_space("random", trials=3)
    tracker, study = start(server, space, tmp_path, "spill")
    tracker.start_trial(0, {"lr": 0.01, "y": 0.1})
    log_steps(tracker, 0, range(0, 50))
    assert tracker.flush(30)
    server.stop()
    log_steps(tracker, 0, range(50, 100))
    end(tracker, study, 0, 99)
    tracker.end_study(finish_study(study, space, "random", 1.0, "budget"))  # waits 2 s, saves
    assert (study.dir / PENDING_FILE).is_file()

    server.start()
    resumed, study = start(server, space, tmp_path, "spill", resume=True)
    resumed.start_trial(1, {"lr": 0.02, "y": 0.2})
    log_steps(resumed, 1, range(100))
    end(resumed, study, 1, 99)
    resumed.end_study(finish_study(study, space, "random", 1.0, "budget"))
    assert resumed.delivered
    assert not (study.dir / PENDING_FILE).exists()  # settled: everything it held arrived
    assert_each_step_once(server, "spill", [0, 1], range(100))


@pytest.mark.slow
def test_a_run_a_hung_server_creates_late_is_not_kept_twice(
    server, make_space, tmp_path, monkeypatch
):
    """The server hangs while a trial's run is created: the client gives up on the create (and
    on the search its retry starts with), the server handles them all once it goes on, so a
    second run of the trial may appear; the trial still has one live run, each step once."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    space = make_space("random", trials=1)
    tracker, study = start(server, space, tmp_path, "hang")
    assert tracker.flush(30)
    server.pause()
    try:
        tracker.start_trial(0, {"lr": 0.01, "y": 0.1})
        log_steps(tracker, 0, range(50))
        deadline = time.monotonic() + 60
        while tracker.buffer.stats.failures < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tracker.buffer.stats.failures >= 3
    finally:
        server.resume()
    assert tracker.flush(60)
    end(tracker, study, 0, 49)
    assert tracker.flush(60)
    tracker.end_study(finish_study(study, space, "random", 1.0, "budget"))
    assert_each_step_once(server, "hang", [0], range(50))  # live runs: trial 0's one


# ---------------------------------------------------------------------- `hpo search` end to end

ROOT = Path(__file__).parents[2]
ATTEMPT_S = 3  # MLFLOW_HTTP_REQUEST_TIMEOUT of the searches below: one attempt's bound
SLACK_S = 30  # a process's start-up and exit on 2 busy cores, beyond --tracking-timeout
WAIT_S = 180  # generous deadline for anything a test waits for


def hpo(args, gates, **popen):
    """`hpo ARGS` as a process of its own, from the project root, gated by `gates`."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HPO_TEST_GATES": str(gates),
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(ATTEMPT_S),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def search(server, tmp_path, gates, study, trials, *extra):
    return hpo(
        [
            "search",
            "--space",
            "experiments/spaces/lr_wd.yaml",
            "--objective",
            "tests.hpo.search_objectives:gated_steps",
            "--driver",
            "random",
            "--trials",
            str(trials),
            "--study",
            study,
            "--runs",
            str(tmp_path / "runs"),
            "--tracking-uri",
            server.uri,
            "--no-system-metrics",
            "--quiet",
            *extra,
        ],
        gates,
    )


def wait_for(condition, what, process=None, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"hpo ended ({process.returncode}) before {what}:\n{err[-3000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no {what} in {timeout} s")


def gate(gates, name):
    return lambda: (gates / name).exists()


def study_runs(server, study_dir):
    """(parent run, {trial number: child run}) of the study, read back from the server."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server.uri)
    link = json.loads((study_dir / "mlflow.json").read_text())
    parent = client.get_run(link["parent_run_id"])
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    return parent, {int(r.data.tags["hpo.trial"]): r for r in children}


def histories(server, run):
    """{metric: [steps]} of a run: every row MLflow holds, duplicates included."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server.uri)
    return {
        key: sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
        for key in run.data.metrics
    }


def arrived(server, study_dir, statuses):
    """Whether the children have these statuses and every reported step (not yet: whether once)."""
    try:
        _, children = study_runs(server, study_dir)
    except Exception:  # noqa: BLE001 (mlflow.json not written yet, or a run not there yet)
        return False
    if {n: children[n].info.status for n in children} != statuses:
        return False
    return all(len(histories(server, children[n]).get("loss", ())) >= 20 for n in statuses)


def assert_delivered_once(server, study_dir, statuses):
    parent, children = study_runs(server, study_dir)
    assert {n: run.info.status for n, run in children.items()} == statuses
    for number, run in children.items():
        steps = histories(server, run)
        assert steps["loss"] == steps["acc"] == list(range(20)), (number, steps)
        for key, seen in steps.items():  # summaries too (duration_s, best_*): each step once
            assert len(seen) == len(set(seen)), (number, key, seen)
    return parent, children


@pytest.mark.slow
def test_a_search_sends_what_an_outage_held_back_while_it_still_runs(server, tmp_path):
    """The server is killed mid-study for longer than one attempt's bound and restarted on the
    same port and backend: every step of every trial arrives once, and every run has ended as
    its trial did, before the study ends (its last trial is held until the test has seen it)."""
    gates = tmp_path / "gates"
    gates.mkdir()
    for name in ("hold-1", "hold-2", "hold-4", "fail-2"):
        (gates / name).touch()
    study_dir = tmp_path / "runs" / "mid"
    process = search(server, tmp_path, gates, "mid", 4)  # 0 1 (2 fails) 3 4: 4 complete

    wait_for(gate(gates, "at-1"), "trial 1", process)
    server.stop()
    down = time.monotonic()
    (gates / "hold-1").unlink()  # trial 1 ends, trial 2 starts and runs: MLflow is down
    wait_for(gate(gates, "at-2"), "trial 2", process)
    time.sleep(max(0.0, ATTEMPT_S + 2 - (time.monotonic() - down)))
    server.start()
    assert time.monotonic() - down > ATTEMPT_S
    (gates / "hold-2").unlink()  # trial 2 fails; 3 runs; 4 waits: the study goes on
    wait_for(gate(gates, "at-4"), "trial 4", process)

    done = {0: "FINISHED", 1: "FINISHED", 2: "FAILED", 3: "FINISHED", 4: "RUNNING"}
    wait_for(lambda: arrived(server, study_dir, done), "trials 0-3 in MLflow", process)
    parent, children = assert_delivered_once(server, study_dir, done)
    assert parent.info.status == "RUNNING" and process.poll() is None  # the study still runs

    (gates / "hold-4").unlink()
    out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0, err[-3000:]
    assert "did not reach" not in err
    parent, _ = assert_delivered_once(server, study_dir, {**done, 4: "FINISHED"})
    assert parent.info.status == "FINISHED"
    assert not (study_dir / PENDING_FILE).exists()


@pytest.mark.slow
def test_a_search_whose_server_is_down_at_the_end_exits_in_time_and_sync_sends_the_rest(
    server, tmp_path
):
    """The server dies during trial 1 of 3: the search still ends --tracking-timeout after the
    study does, says how many records it kept, and `hpo sync` sends them once the server is
    back, creating trial 2's run and ending every run as its trial did."""
    timeout = 5
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "hold-1").touch()
    study_dir = tmp_path / "runs" / "late"
    process = search(server, tmp_path, gates, "late", 3, "--tracking-timeout", str(timeout))
    wait_for(gate(gates, "at-1"), "trial 1", process)
    wait_for(lambda: arrived(server, study_dir, {0: "FINISHED", 1: "RUNNING"}), "trial 0")
    server.stop()
    released = time.monotonic()
    (gates / "hold-1").unlink()
    out, err = process.communicate(timeout=WAIT_S)
    took = time.monotonic() - released
    assert process.returncode == 0, err[-3000:]
    assert took < timeout + SLACK_S, f"{took:.1f} s"
    kept = [line for line in err.splitlines() if "did not reach" in line]
    assert len(kept) == 1, err
    n = int(re.search(r"tracking: (\d+) records", kept[0]).group(1))
    taken, _ = PendingJournal(study_dir).take()
    assert count(taken) == n > 0 and taken["publish"]  # and its plots wait for sync too
    assert "study folder:" in out

    journal = (study_dir / PENDING_FILE).read_bytes()
    still_down = hpo(["sync", str(study_dir)], gates)
    _, err = still_down.communicate(timeout=WAIT_S)
    assert still_down.returncode == 2 and "does not answer" in err
    assert (study_dir / PENDING_FILE).read_bytes() == journal

    server.start()
    parent, children = study_runs(server, study_dir)
    assert parent.info.status == "RUNNING" and 2 not in children  # as the study left them
    for _ in range(2):  # the second finds nothing left to send
        sync = hpo(["sync", str(study_dir)], gates)
        out, err = sync.communicate(timeout=WAIT_S)
        assert sync.returncode == 0, err[-3000:]
        assert "every record is in" in out
        assert not (study_dir / PENDING_FILE).exists()
        done = {0: "FINISHED", 1: "FINISHED", 2: "FINISHED"}
        parent, _ = assert_delivered_once(server, study_dir, done)
        assert parent.info.status == "FINISHED"
    from mlflow.tracking import MlflowClient

    artifacts = {a.path for a in MlflowClient(server.uri).list_artifacts(parent.info.run_id)}
    assert {"summary.json", "plots"} <= artifacts  # published by sync


@pytest.mark.slow
def test_requests_a_hung_server_handles_late_leave_no_duplicate(server, tmp_path):
    """The server hangs (SIGSTOP) mid-study for several attempts' bounds: the client gives up
    on requests the server still holds, retries them, and the server later handles both. A
    trial's run must still be one run, each of its steps once."""
    gates = tmp_path / "gates"
    gates.mkdir()
    for name in ("hold-1", "hold-2"):
        (gates / name).touch()
    study_dir = tmp_path / "runs" / "hung"
    process = search(server, tmp_path, gates, "hung", 3)
    try:
        wait_for(gate(gates, "at-1"), "trial 1", process)
        server.pause()
        hung = time.monotonic()
        (gates / "hold-1").unlink()  # trial 1 ends, trial 2 starts and logs: nothing answers
        wait_for(gate(gates, "at-2"), "trial 2", process)
        time.sleep(max(0.0, 3 * ATTEMPT_S + 1 - (time.monotonic() - hung)))
    finally:
        server.resume()
    (gates / "hold-2").unlink()
    out, err = process.communicate(timeout=WAIT_S)
    assert process.returncode == 0, err[-3000:]
    assert "did not reach" not in err
    parent, _ = assert_delivered_once(server, study_dir, {n: "FINISHED" for n in range(3)})
    assert parent.info.status == "FINISHED"
    _, children = study_runs(server, study_dir)
    from mlflow.tracking import MlflowClient

    live = MlflowClient(server.uri).search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert sorted(int(r.data.tags["hpo.trial"]) for r in live) == [0, 1, 2]  # one run each


@pytest.mark.slow
def test_what_a_search_kept_is_sent_by_its_resume(server, tmp_path):
    """The server is down at the end of a search; `hpo search --resume` once it is back sends
    what the first kept (trial 2's run included), while its own trial runs, each step once."""
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "hold-1").touch()
    study_dir = tmp_path / "runs" / "again"
    first = search(server, tmp_path, gates, "again", 3, "--tracking-timeout", "3")
    wait_for(gate(gates, "at-1"), "trial 1", first)
    wait_for(lambda: arrived(server, study_dir, {0: "FINISHED", 1: "RUNNING"}), "trial 0")
    server.stop()
    (gates / "hold-1").unlink()
    _, err = first.communicate(timeout=WAIT_S)
    assert first.returncode == 0 and (study_dir / PENDING_FILE).exists(), err[-3000:]

    server.start()
    resumed = search(server, tmp_path, gates, "again", 4, "--resume")
    out, err = resumed.communicate(timeout=WAIT_S)
    assert resumed.returncode == 0, err[-3000:]
    assert "did not reach" not in err
    assert not (study_dir / PENDING_FILE).exists()
    parent, _ = assert_delivered_once(server, study_dir, {n: "FINISHED" for n in range(4)})
    assert parent.info.status == "FINISHED"
