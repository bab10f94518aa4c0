"""The ray driver on a real two-node Ray cluster, both nodes on this machine (127.0.0.1).

Each node is a `ray start --block` process in its own session with one CPU, so that killing a
node is one killpg, and the cleanup kills what this file started and nothing else (never
`ray stop`, which would stop every Ray on the machine). The nodes write their state under a
private RAY_TMPDIR, so a `ray.init()` elsewhere on the machine never finds this cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from hpo.drivers import get_driver
from hpo.drivers.base import StudySpec
from hpo.space import space_from_dict
from hpo.study import load_trials
from runner.errors import UserInputError

ray = pytest.importorskip("ray")
RAY = str(Path(sys.executable).with_name("ray"))
STEPS = 8
STEP_SECONDS = 0.4
PARAMS = {"y": {"type": "float", "low": 0.0, "high": 1.0}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class TwoNodeCluster:
    address: str
    head: subprocess.Popen
    worker: subprocess.Popen
    head_id: str
    worker_id: str

    def kill_worker_node(self) -> None:
        """The second machine dies: its raylet, object store and trial processes at once."""
        os.killpg(self.worker.pid, signal.SIGKILL)


def start_node(temp_dir: str, log: Path, *args: str) -> subprocess.Popen:
    # Workers import the objective from this test module, as a user's cluster imports theirs.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "RAY_TMPDIR": temp_dir,
        # `ray start` turns on token authentication when ~/.ray/auth_token exists (Ray 2.60),
        # and the driver joining by address then needs RAY_AUTH_MODE=token: not tested here
        "RAY_AUTH_MODE": "disabled",
        # a lost node is noticed within about a second, not Ray's default 15 s
        "RAY_health_check_period_ms": "300",
        "RAY_health_check_failure_threshold": "3",
    }
    command = [
        RAY,
        "start",
        "--block",
        "--num-cpus=1",
        "--node-ip-address=127.0.0.1",
        "--object-store-memory=100000000",
        "--disable-usage-stats",
        # fixed by default: two nodes on one machine (or another Ray here) would collide
        f"--dashboard-agent-listen-port={free_port()}",
        *args,
    ]
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_for_two_nodes(address: str, worker: subprocess.Popen, log: Path) -> list[dict]:
    ray.init(address=address, log_to_driver=False)
    try:
        deadline = time.monotonic() + 60
        while len(nodes := [n for n in ray.nodes() if n["Alive"]]) < 2:
            assert worker.poll() is None, f"worker node exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "the second node never joined"
            time.sleep(0.2)
        return nodes
    finally:
        ray.shutdown()  # the driver under test connects by itself


def wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, f"ray start exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no Ray head on {port}: {log.read_text()[-2000:]}"
            time.sleep(0.2)


@pytest.fixture
def two_node_cluster(tmp_path):
    # Ray's socket paths must stay under 108 bytes: a short private folder, not tmp_path.
    temp_dir = tempfile.mkdtemp(prefix="hpo-ray-", dir="/tmp")
    log = tmp_path / "ray_start.log"
    port = free_port()
    started: list[subprocess.Popen] = []
    try:
        started.append(
            start_node(
                temp_dir,
                log,
                "--head",
                f"--port={port}",
                "--include-dashboard=false",
                f"--temp-dir={temp_dir}",
            )
        )
        wait_for_port(port, started[0], log)
        address = f"127.0.0.1:{port}"
        started.append(start_node(temp_dir, log, f"--address={address}"))
        nodes = wait_for_two_nodes(address, started[1], log)
        head = next(n for n in nodes if "node:__internal_head__" in n["Resources"])
        worker = next(n for n in nodes if n is not head)
        yield TwoNodeCluster(address, *started, head["NodeID"], worker["NodeID"])
    finally:
        for process in started:  # the --block process, its node's processes and their workers
            with contextlib.suppress(ProcessLookupError):  # the killed node's are gone already
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def checkpointed_trial(params, reporter):
    """STEPS steps of STEP_SECONDS; each writes checkpoints/last.pt (its step) before reporting.

    A restarted trial continues after the step of reporter.resume_checkpoint, the path the
    runner resumes from; starts.jsonl notes where each run began. A first run waits (up to a
    minute) for a second trial to start: the one-CPU node it holds makes Ray place that trial
    on the other node, however slowly a busy machine starts its worker there.
    """
    start = 0
    if reporter.resume_checkpoint:
        start = json.loads(Path(reporter.resume_checkpoint).read_text())["step"]
    with open(reporter.dir / "starts.jsonl", "a") as starts:
        starts.write(json.dumps({"step": start, "from": reporter.resume_checkpoint}) + "\n")
    deadline = time.monotonic() + 60
    while len(list(reporter.dir.parent.glob("*/starts.jsonl"))) < 2:
        assert time.monotonic() < deadline, "no second trial started in a minute"
        time.sleep(0.05)
    last = reporter.dir / "checkpoints" / "last.pt"
    last.parent.mkdir(exist_ok=True)
    for step in range(start + 1, STEPS + 1):
        time.sleep(STEP_SECONDS)
        tmp = last.with_suffix(".tmp")
        tmp.write_text(json.dumps({"step": step}))
        os.replace(tmp, last)  # as the runner writes it: a rename, never half a file
        reporter.report(step, {"val_loss": params["y"] + 1.0 / step})
    return params["y"]


def attempts(trial: Path) -> list[dict]:
    path = trial / "ray_attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class NodeKiller(threading.Thread):
    """Kills the worker node once a trial running there has handed Ray two checkpoints."""

    def __init__(self, cluster: TwoNodeCluster, study_dir: Path) -> None:
        super().__init__(daemon=True)
        self.cluster, self.study_dir = cluster, study_dir
        self.victim: int | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for trial in sorted((self.study_dir / "trials").glob("*")):
                runs = attempts(trial)
                saved = list((self.study_dir / "ray").glob(f"*/trial_{trial.name}/checkpoint_*"))
                if runs and runs[-1]["node_id"] == self.cluster.worker_id and len(saved) >= 2:
                    self.cluster.kill_worker_node()
                    self.victim = int(trial.name)
                    return
            time.sleep(0.05)


@pytest.mark.service
@pytest.mark.slow
def test_trials_spread_over_two_nodes_and_a_lost_node_s_trial_resumes_from_its_checkpoint(
    tmp_path, two_node_cluster
):
    # `hpo search` in a process of its own, as a user runs it: Ray keeps per-process state
    # (its token-authentication mode, fixed by the first Ray session: another test's local
    # ray.init) that would decide whether this process can join a cluster without tokens.
    space_file = tmp_path / "cluster.yaml"
    space_file.write_text(
        yaml.safe_dump(
            {
                "objective": "val_loss",
                "budget": {"trials": 3},
                "driver": {"seed": 0, "ray": {"max_failures": 2}},
                "params": PARAMS,
            }
        )
    )
    study_dir = tmp_path / "runs" / "cluster"
    killer = NodeKiller(two_node_cluster, study_dir)
    killer.start()
    try:
        search = subprocess.run(
            [
                str(Path(sys.executable).with_name("hpo")),
                "search",
                "--space",
                str(space_file),
                "--driver",
                "ray",
                "--address",
                two_node_cluster.address,
                "--objective",
                "test_ray_cluster:checkpointed_trial",
                "--parallel",
                "2",
                "--runs",
                str(tmp_path / "runs"),
                "--no-track",
                "--quiet",
            ],
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
                # as the nodes run; this test process may carry the "token" an earlier
                # test's local ray.init put in os.environ
                "RAY_AUTH_MODE": "disabled",
            },
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        killer.stop.set()
        killer.join()

    assert search.returncode == 0, search.stderr[-3000:]
    assert killer.victim is not None, "no trial ran on the second node long enough to kill it"
    records = load_trials(study_dir)
    assert [(t.state, t.steps) for t in records] == [("complete", STEPS)] * 3
    trials = {t.number: study_dir / "trials" / str(t.number) for t in records}
    first_nodes = {attempts(path)[0]["node_id"] for path in trials.values()}
    assert first_nodes == {two_node_cluster.head_id, two_node_cluster.worker_id}
    storage = (study_dir / "ray").resolve()
    for number in trials:  # every evaluation's checkpoint went to the study's Ray storage
        saved = sorted(storage.glob(f"*/trial_{number}/checkpoint_*"))
        assert saved and all((c / "last.pt").is_file() for c in saved), number
    lost, again = attempts(trials[killer.victim])
    assert lost["node_id"] == two_node_cluster.worker_id and lost["resume_checkpoint"] is None
    assert again["node_id"] == two_node_cluster.head_id
    assert Path(again["resume_checkpoint"]).resolve().is_relative_to(storage)
    starts = [
        json.loads(line)["step"]
        for line in (trials[killer.victim] / "starts.jsonl").read_text().splitlines()
    ]
    assert starts[0] == 0 and starts[1] == again["resumed_at_step"] >= 1, starts


def test_an_address_where_nothing_answers_stops_the_study_in_one_line_and_starts_no_ray(
    tmp_path,
):
    address = f"127.0.0.1:{free_port()}"  # free: nothing listens there
    raw = {"driver": {"ray": {"address": address}}, "params": PARAMS}
    space = space_from_dict(raw, source="cluster.yaml", driver="ray")
    study = StudySpec.for_space(space, runs=tmp_path / "runs", quiet=True)

    with pytest.raises(UserInputError) as stopped:
        get_driver("ray").run(space, study, checkpointed_trial)

    message = str(stopped.value)
    assert message.startswith(f"driver.address {address}: ") and "\n" not in message
    assert not ray.is_initialized() and not study.dir.exists()
