"""Ctrl-C and SIGTERM on a real `hpo search` process, then --resume (hpo.interrupts).

Every search here is a real subprocess in a session of its own, signalled as a terminal does
(os.killpg: the whole foreground process group) or as `kill` does (the process alone). The
tests wait for files or lines with generous deadlines, never for a fixed time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.metrics_log import read_metrics

ROOT = Path(__file__).parents[2]
# lr_wd.yaml without a pruner: every trial an interrupted study resumes must complete
SPACE = "tests/spaces/lr_wd.yaml"
DEADLINE = 120.0
SIGNALS = [pytest.param(signal.SIGINT, id="SIGINT"), pytest.param(signal.SIGTERM, id="SIGTERM")]
# the default experiment shrunk so a step takes milliseconds; an evaluation (and last.pt) every
# 4 steps, so a trial is interrupted with a checkpoint to resume from
SMALL_RUNNER = [
    "-o",
    "model.n_layer=1",
    "-o",
    "model.n_embd=32",
    "-o",
    "model.n_head=2",
    "-o",
    "data.max_chars=200000",
    "-o",
    "eval.max_eval_batches=2",
    "-o",
    "eval.sample_tokens=0",
    "-o",
    "eval.eval_steps=4",
]


def hpo_search(tmp_path: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hpo.cli",
        "search",
        "--space",
        SPACE,
        "--runs",
        str(tmp_path / "runs"),
        "--study",
        "s",
        "--no-track",
        *args,
    ]


def start(command: list[str], stderr: Path) -> subprocess.Popen:
    """The command in a new session (its own process group, as a terminal's job is)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(stderr, "w") as err:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def wait_for(what: str, condition: Callable[[], bool], process: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert process.poll() is None, f"the search ended (code {process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} after {DEADLINE:.0f} s"
        time.sleep(0.02)


def finish(process: subprocess.Popen, timeout: float = DEADLINE) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"the search did not end within {timeout:.0f} s") from None


def trials(study: Path) -> dict[int, dict]:
    found = {}
    for path in (study / "trials").glob("*/trial.json"):
        record = json.loads(path.read_text())
        found[record["number"]] = record
    return found


def catches_sigterm(pid: int) -> bool:
    """Whether the process has installed a SIGTERM handler: hpo.cli.main's first act."""
    try:
        # first that it runs hpo: between fork and exec it has the test process's handlers
        if b"hpo.cli" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return False
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))


@pytest.mark.slow
@pytest.mark.parametrize("parallel", [1, 2])
def test_ctrl_c_mid_trial_stops_cleanly_and_resume_finishes_that_trial(tmp_path, parallel):
    budget = parallel + 1
    study, log = tmp_path / "runs" / "s", tmp_path / "stderr.txt"
    command = hpo_search(
        tmp_path,
        "--trials",
        str(budget),
        "--max-steps",
        "100",
        "--parallel",
        str(parallel),
        *SMALL_RUNNER,
    )
    process = start(command, log)
    running = [study / "trials" / str(n) / "checkpoints" / "last.pt" for n in range(parallel)]
    wait_for(
        "a checkpoint of each running trial", lambda: all(p.is_file() for p in running), process
    )
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert finish(process) == 130
    stderr = log.read_text()
    assert "Traceback" not in stderr and "hpo: interrupted" in stderr
    summary = json.loads((study / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted"
    interrupted = {n: t for n, t in trials(study).items() if t["state"] == "interrupted"}
    assert sorted(interrupted) == list(range(parallel))
    assert summary["n_trials"]["interrupted"] == parallel
    for number in interrupted:
        result = json.loads((study / "trials" / str(number) / "result.json").read_text())
        assert result["status"] == "interrupted" and 0 < result["steps"] < 100
        assert (study / "trials" / str(number) / "checkpoints" / "last.pt").is_file()

    resumed = start([*command, "--resume"], tmp_path / "resumed.txt")
    assert finish(resumed, timeout=600) == 0, (tmp_path / "resumed.txt").read_text()
    after = trials(study)
    for number, before in interrupted.items():
        record = after[number]
        assert record["state"] == "complete" and record["params"] == before["params"]
        assert record["resumed_from_step"] > 0
        metrics = study / "trials" / str(number) / "metrics.jsonl"
        evals = [r["step"] for r in read_metrics(metrics, "eval")]
        assert evals == sorted(set(evals)) and evals[-1] == 100, "no step evaluated twice"
    complete = [t for t in after.values() if t["state"] == "complete"]
    assert len(complete) == budget
    assert len({json.dumps(t["params"], sort_keys=True) for t in complete}) == budget
    summary = json.loads((study / "summary.json").read_text())
    assert summary["stop_reason"] == "budget" and summary["n_trials"]["interrupted"] == 0


@pytest.mark.parametrize(
    ("parallel", "signum", "to_group"),
    [
        pytest.param(1, signal.SIGINT, True, id="1-SIGINT-group"),
        pytest.param(2, signal.SIGINT, True, id="2-SIGINT-group"),
        pytest.param(2, signal.SIGTERM, False, id="2-SIGTERM-process"),
    ],
)
@pytest.mark.slow
def test_a_plain_objective_stops_at_its_next_report_and_resume_continues_it(
    tmp_path, parallel, signum, to_group
):
    budget = 3
    study, log = tmp_path / "runs" / "s", tmp_path / "stderr.txt"
    command = hpo_search(
        tmp_path,
        "--trials",
        str(budget),
        "--parallel",
        str(parallel),
        "--objective",
        "tests.hpo.search_objectives:checkpoints_each_step",
    )
    process = start(command, log)
    checkpoints = [study / "trials" / str(n) / "checkpoints" / "last.pt" for n in range(parallel)]
    wait_for(
        "the first trials' checkpoints", lambda: all(p.is_file() for p in checkpoints), process
    )
    (os.killpg if to_group else os.kill)(process.pid, signum)
    assert finish(process) == 130
    assert "Traceback" not in log.read_text()
    before = trials(study)
    assert sorted(n for n, t in before.items() if t["state"] == "interrupted") == list(
        range(parallel)
    )
    assert json.loads((study / "summary.json").read_text())["stop_reason"] == "interrupted"
    saved = {n: int(checkpoints[n].read_text()) for n in range(parallel)}

    resumed = start([*command, "--resume"], tmp_path / "resumed.txt")
    assert finish(resumed) == 0, (tmp_path / "resumed.txt").read_text()
    after = trials(study)
    for number in range(parallel):  # the same trial, from its own checkpoint
        assert after[number]["state"] == "complete"
        assert after[number]["params"] == before[number]["params"]
        resumed_from = (study / "trials" / str(number) / "resumed_from.txt").read_text()
        assert int(resumed_from) == saved[number] > 0
    complete = [t for t in after.values() if t["state"] == "complete"]
    assert len(complete) == budget == len(after)
    assert len({json.dumps(t["params"], sort_keys=True) for t in complete}) == budget


@pytest.mark.service  # PostgreSQL
def test_on_a_database_an_interrupted_trial_is_queued_again_and_continues_from_its_checkpoint(
    tmp_path, postgres_url
):
    import optuna

    study, log = tmp_path / "runs" / "s", tmp_path / "stderr.txt"
    command = hpo_search(
        tmp_path,
        "--trials",
        "2",
        "--storage",
        postgres_url,
        "--objective",
        "tests.hpo.search_objectives:checkpoints_each_step",
    )
    process = start(command, log)
    checkpoint = study / "trials" / "0" / "checkpoints" / "last.pt"
    wait_for("the first trial's checkpoint", checkpoint.is_file, process)
    os.killpg(process.pid, signal.SIGINT)
    assert finish(process) == 130
    assert "Traceback" not in log.read_text()
    saved = int(checkpoint.read_text())
    stored = optuna.load_study(study_name="s", storage=postgres_url).trials
    states = [t.state.name for t in stored]
    assert states == ["FAIL", "WAITING"] and stored[1].params == stored[0].params

    resumed = start([*command, "--resume"], tmp_path / "resumed.txt")
    assert finish(resumed) == 0, (tmp_path / "resumed.txt").read_text()
    after = trials(study)
    assert after[0]["state"] == "failed" and after[1]["state"] == "complete"
    assert after[1]["params"] == after[0]["params"]
    assert int((study / "trials" / "1" / "resumed_from.txt").read_text()) == saved > 0
    complete = [t for t in after.values() if t["state"] == "complete"]
    assert len(complete) == 2
    assert len({json.dumps(t["params"], sort_keys=True) for t in complete}) == 2


@pytest.mark.parametrize("parallel", [1, 2])
@pytest.mark.slow
def test_a_second_ctrl_c_ends_the_search_at_once(tmp_path, parallel):
    study, log = tmp_path / "runs" / "s", tmp_path / "stderr.txt"
    command = hpo_search(
        tmp_path,
        "--trials",
        "4",
        "--parallel",
        str(parallel),
        "--objective",
        "tests.hpo.search_objectives:hangs_after_first_report",
    )
    process = start(command, log)
    started = [study / "trials" / str(n) / "started" for n in range(parallel)]
    wait_for("the first trials", lambda: all(p.is_file() for p in started), process)
    os.killpg(process.pid, signal.SIGINT)
    wait_for("the stopping line", lambda: "hpo: stopping" in log.read_text(), process)
    assert process.poll() is None, "the first Ctrl-C waits for the trials' next report"
    os.killpg(process.pid, signal.SIGINT)
    assert finish(process, timeout=30) == 130
    assert "Traceback" not in log.read_text()
    states = {n: t["state"] for n, t in trials(study).items()}
    assert states == {n: "interrupted" for n in range(parallel)}
    assert json.loads((study / "summary.json").read_text())["stop_reason"] == "interrupted"


@pytest.mark.parametrize("moment", ["main", "storage"])
@pytest.mark.parametrize("signum", SIGNALS)
def test_ctrl_c_during_start_up_exits_130_without_a_traceback(tmp_path, signum, moment):
    log = tmp_path / "stderr.txt"
    command = hpo_search(tmp_path, "--objective", "tests.hpo.search_objectives:quadratic")
    process = start(command, log)
    if moment == "main":  # as soon as main() runs: the imports of the drivers are still ahead
        wait_for("main()", lambda: catches_sigterm(process.pid), process)
    else:  # the study folder is made just before optuna opens its storage
        wait_for("the study folder", (tmp_path / "runs" / "s").is_dir, process)
    os.killpg(process.pid, signum)
    code = finish(process)
    stderr = log.read_text()
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1].startswith("hpo: interrupted")


@pytest.mark.service  # starts a local Ray cluster, twice
def test_ray_stops_on_the_first_ctrl_c_and_resume_continues_the_interrupted_trials(tmp_path):
    budget, parallel = 3, 2
    study, log = tmp_path / "runs" / "s", tmp_path / "stderr.txt"
    command = hpo_search(
        tmp_path,
        "--driver",
        "ray",
        "--trials",
        str(budget),
        "--parallel",
        str(parallel),
        "--objective",
        "tests.hpo.search_objectives:checkpoints_each_step",
    )
    process = start(command, log)
    checkpoints = [study / "trials" / str(n) / "checkpoints" / "last.pt" for n in range(parallel)]
    wait_for(
        "the first trials' checkpoints", lambda: all(p.is_file() for p in checkpoints), process
    )
    os.killpg(process.pid, signal.SIGINT)
    assert finish(process) == 130
    stderr = log.read_text()
    assert "Traceback" not in stderr and "Tuner.restore" not in stderr, stderr
    before = trials(study)
    assert [before[n]["state"] for n in range(parallel)] == ["interrupted"] * parallel, before
    assert json.loads((study / "summary.json").read_text())["stop_reason"] == "interrupted"

    resumed = start([*command, "--resume"], tmp_path / "resumed.txt")
    assert finish(resumed, timeout=300) == 0, (tmp_path / "resumed.txt").read_text()
    after = trials(study)
    for number in range(parallel):  # Tune ran each again as the same trial, from its last.pt
        assert after[number]["state"] == "complete"
        assert after[number]["params"] == before[number]["params"]
        resumed_from = (study / "trials" / str(number) / "resumed_from.txt").read_text()
        assert int(resumed_from) > 0
    complete = [t for t in after.values() if t["state"] == "complete"]
    assert len(complete) == budget
    assert len({json.dumps(t["params"], sort_keys=True) for t in complete}) == budget


@pytest.mark.slow
@pytest.mark.parametrize("signum", SIGNALS)
def test_hpo_train_stops_at_the_end_of_a_step_with_a_checkpoint_and_exit_130(tmp_path, signum):
    out, log = tmp_path / "trial", tmp_path / "stderr.txt"
    command = [
        sys.executable,
        "-m",
        "hpo.cli",
        "train",
        "--quiet",
        "--output",
        str(out),
        "-o",
        "train.max_steps=100000",
        *SMALL_RUNNER,
    ]
    process = start(command, log)
    wait_for("a checkpoint", (out / "checkpoints" / "last.pt").is_file, process)
    os.kill(process.pid, signum)  # SIGTERM: what `kill`, `timeout` and schedulers send
    assert finish(process) == 130
    assert "Traceback" not in log.read_text()
    result = json.loads((out / "result.json").read_text())
    assert result["status"] == "interrupted" and 0 < result["steps"] < 100000
