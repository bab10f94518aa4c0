"""A real `mlflow server` for tests: 127.0.0.1, a free port, a sqlite backend and artifact folder.

    with MlflowServer(tmp_path / "mlflow") as server:
        client = MlflowClient(server.uri)
        server.stop()      # the tracking server goes away (its backend stays)
        server.start()     # and comes back on the same port with the same backend
        server.pause()     # it hangs (SIGSTOP), answering nothing
        server.resume()    # and goes on (SIGCONT)

The server runs in its own process group, so stop() ends it and the workers it started.
shared_server() is one server for every test module of a pytest process (a cold start takes
15-30 s on 2 busy cores); a test may stop and restart it, the next one finds it running again.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

START_TIMEOUT = (
    90.0  # seconds; a cold start imports mlflow's server side (several seconds on 2 cores)
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """One `mlflow server` subprocess; start() waits until GET /health answers."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.backend = f"sqlite:///{self.root / 'backend.db'}"
        self.artifacts = self.root / "artifacts"
        self.process: subprocess.Popen | None = None
        self.log = self.root / "server.log"

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MlflowServer:
        mlflow = Path(sys.executable).with_name("mlflow")
        command = [
            str(mlflow) if mlflow.exists() else "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            self.backend,
            "--artifacts-destination",
            str(self.artifacts),
        ]
        # No job runner (huey consumers for server-side jobs): tests need none, and it doubles
        # the start-up time on 2 cores.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with {self.process.returncode}:\n"
                    f"{self.log.read_text()[-3000:]}"
                )
            if self.healthy():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"mlflow server did not answer in {START_TIMEOUT:g} s:\n{self.log.read_text()[-3000:]}"
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate the server and its workers (SIGTERM, then SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        group = self.process.pid  # start_new_session: the server leads its own group
        try:
            os.killpg(group, signal.SIGTERM)
            os.killpg(group, signal.SIGCONT)  # a paused server handles its SIGTERM now
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        try:  # workers that outlived their parent
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process = None
        deadline = time.monotonic() + 10
        while self.healthy() and time.monotonic() < deadline:
            time.sleep(0.1)

    def pause(self) -> None:
        """SIGSTOP the server and its workers: it hangs, connections are accepted by the kernel
        and never answered (a server that is up but stuck, not one that is gone)."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: the server goes on, and handles the requests that queued meanwhile."""
        os.killpg(self.process.pid, signal.SIGCONT)

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_shared: MlflowServer | None = None


def shared_server() -> MlflowServer:
    """The process's one server, started on first use (again if a test left it stopped)."""
    global _shared
    if _shared is None:
        root = Path(tempfile.mkdtemp(prefix="hpo-mlflow-"))
        _shared = MlflowServer(root)
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        atexit.register(_shared.stop)  # runs first: last registered, first called
    if _shared.process is None or not _shared.healthy():
        _shared.stop()
        _shared.start()
    return _shared
