"""MLflow's process-wide settings (hpo.tracking.mlflow_env) and SQLite store creation, in real
processes: two that create one new store at once, and a tracked search with MLflow telemetry
left free to start (no CI or pytest variables in its environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

# MLflow turns telemetry off by itself when one of these is set (mlflow.telemetry.utils)
QUIET_MARKERS = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "DO_NOT_TRACK")

CREATE_STORE = """
import sys, time
from pathlib import Path
go = Path(sys.argv[2])
while not go.exists():  # every process imported mlflow: now they race
    time.sleep(0.01)
from hpo.tracking.mlflow_store import open_client, experiment_id
client, _ = open_client(f"sqlite:///{sys.argv[1]}")
experiment_id(client, "race")
print("store ready")
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in QUIET_MARKERS}
    env.pop("MLFLOW_DISABLE_TELEMETRY", None)
    return {**env, "PYTHONPATH": str(ROOT), **extra}


@pytest.mark.slow
def test_processes_that_create_one_new_sqlite_store_at_once_all_succeed(tmp_path):
    go = tmp_path / "go"
    database = tmp_path / "mlflow.db"
    # warm up imports in the script before the gate, so the race is on store creation only
    script = "import hpo.tracking.mlflow_store, mlflow.tracking\n" + CREATE_STORE
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(database), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        for _ in range(3)
    ]
    time.sleep(1.0)  # not needed for correctness: gives the racers time to reach the gate
    go.touch()
    results = [racer.communicate(timeout=180) for racer in racers]
    for racer, (out, err) in zip(racers, results, strict=True):
        assert racer.returncode == 0, err[-2000:]
        assert out.strip() == "store ready"
    assert (tmp_path / "mlflow.db.lock").exists()


TELEMETRY_PROBE = """
import json, os, sys, threading
started = []  # the name of every thread the process starts, telemetry's included
_start = threading.Thread.start
def start(thread):
    started.append(thread.name)
    return _start(thread)
threading.Thread.start = start
from hpo.cli import main
code = main(sys.argv[1:])
import mlflow.telemetry
print(json.dumps({
    "code": code,
    "client": repr(mlflow.telemetry.get_telemetry_client()),
    "threads": sorted(set(started)),
    "session_in_env": "_MLFLOW_TELEMETRY_SESSION_ID" in os.environ,
    "retries": os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES"),
}))
"""


@pytest.mark.slow
def test_a_tracked_search_starts_no_mlflow_telemetry(tmp_path):
    """MLflow's telemetry thread pops _MLFLOW_TELEMETRY_SESSION_ID from os.environ while the
    main thread copies it (KeyError); hpo turns telemetry off, so no such thread ever runs."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            TELEMETRY_PROBE,
            "search",
            "--space",
            "experiments/spaces/lr_wd.yaml",
            "--objective",
            "tests.hpo.search_objectives:quadratic",
            "--driver",
            "random",
            "--trials",
            "2",
            "--parallel",
            "2",
            "--runs",
            str(tmp_path / "runs"),
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--no-system-metrics",
            "--quiet",
        ],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["code"] == 0
    assert probe["client"] == "None"
    assert not any("Telemetry" in name for name in probe["threads"]), probe["threads"]
    assert not probe["session_in_env"]
    assert probe["retries"] == "0"  # one attempt per request: hpo's buffer retries
    assert "KeyError" not in result.stderr


# "never answers" waits out the real request timeout: seconds
@pytest.mark.parametrize("peer", ["refuses", pytest.param("never answers", marks=pytest.mark.slow)])
def test_one_mlflow_request_is_one_bounded_attempt(peer, monkeypatch):
    """MLflow's own client would retry 7 times with up to 120 s between tries (minutes); under
    hpo's settings a request to a closed port fails at once, to a silent peer after the timeout."""
    import socket

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from hpo.tracking import mlflow_env

    for name in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")  # the user's value is kept
    mlflow_env.configure()
    with socket.socket() as listener:  # a real TCP peer: it never accepts, or is closed
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        if peer == "never answers":
            listener.listen(16)  # the kernel completes the handshake; no byte ever comes back
        else:
            listener.close()
        client = MlflowClient(f"http://127.0.0.1:{port}")
        began = time.monotonic()
        with pytest.raises(MlflowException):
            client.get_experiment("0")
        took = time.monotonic() - began
    assert took < 2 + 3, f"{took:.1f} s"
