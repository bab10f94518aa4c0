"""Trials per hour for 2-second trials, with 1 and with 2 workers, locally and on a Ray cluster.

The question (issue 5): does a second worker double the trials an hour? Each configuration runs
one study of --trials trials and times it; the baseline, measured in the same run, is the same
engine with one worker.

Trials (--kind):
    sleep   the primary figure: 10 steps of 0.2 s asleep, a report after each. The trial uses
            no CPU, so the ratio measures the engine alone: starting, reporting and ending
            trials, and placing two at once.
    cpu     10 steps of pure-Python arithmetic, a fixed amount each: what one core computes in
            0.2 s, measured at start (the fastest of 5 tries). On 2 cores two such trials
            compete with the engine's own processes and with whatever else the machine runs,
            so this ratio shows what a CPU-bound trial gets here, not the engine's scaling.

Engines:
    local   hpo's worker processes (hpo.parallel, `hpo search --driver random --parallel K`),
            K = 1 and 2; both run trials in worker processes (StudySpec.isolate), so that they
            differ only in K.
    ray     `hpo search --driver ray --address ...` on a two-node Ray cluster started here on
            127.0.0.1 (one `ray start --block` per node, 1 CPU each, RAY_AUTH_MODE=disabled),
            at most K trials at once (cpus_per_trial 1): K = 2 puts one on each node.

trials/h = trials x 3600 / the trials window: from the first trial's start to the last one's
end, as trials/<n>/trial.json records them. The whole run (driver.run: for Ray, connecting to
the cluster and starting Tune too) is printed beside it. Efficiency = trials/h with 2 workers /
(2 x trials/h with 1); the goal is >= 0.85.

    .venv/bin/python bench/trial_throughput.py                       # sleep, local and ray, ~2 min
    .venv/bin/python bench/trial_throughput.py --kind cpu --trials 12
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

STEPS = 10
TRIAL_SECONDS = 2.0


def arithmetic(loops: int) -> int:
    x = 0
    for _ in range(loops):
        for i in range(1000):
            x += i * i
    return x


def loops_per_step() -> int:
    """How many arithmetic loops one core runs in a step's time: the fastest of 5 tries."""
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        arithmetic(100)
        best = min(best, time.perf_counter() - start)
    return round(100 * TRIAL_SECONDS / STEPS / best)


@dataclass(frozen=True)
class TwoSecondTrial:
    """STEPS steps of TRIAL_SECONDS / STEPS asleep, or of `loops` arithmetic loops (about as long
    on an idle core)."""

    kind: str
    loops: int = 0

    def __call__(self, params, reporter):
        for step in range(1, STEPS + 1):
            if self.kind == "sleep":
                time.sleep(TRIAL_SECONDS / STEPS)
            else:
                arithmetic(self.loops)
            reporter.report(step, {"val_loss": params["y"] + 1.0 / step})
        return params["y"]


def run_study(
    engine: str, trial: TwoSecondTrial, workers: int, trials: int, runs: Path, address: str | None
):
    """One study through the public API: (trials window seconds, whole run seconds)."""
    from hpo.drivers import get_driver
    from hpo.drivers.base import StudySpec
    from hpo.space import space_from_dict
    from hpo.study import load_trials

    driver = "ray" if engine == "ray" else "random"
    raw = {
        "budget": {"trials": trials},
        "driver": {"seed": 0, "ray": {"address": address, "cpus_per_trial": 1}},
        "params": {"y": {"type": "float", "low": 0.0, "high": 1.0}},
    }
    space = space_from_dict(raw, source="throughput.yaml", driver=driver)
    name = f"{engine}-{trial.kind}-{workers}"
    study = StudySpec.for_space(
        space, name=name, runs=runs, parallel=workers, isolate=True, quiet=True
    )
    start = time.perf_counter()
    result = get_driver(driver).run(space, study, trial)
    whole = time.perf_counter() - start
    if result.count("complete") != trials:
        raise RuntimeError(f"{name}: {result.count('complete')} of {trials} trials complete")
    records = load_trials(study.dir)
    window = max(r.started + r.duration for r in records) - min(r.started for r in records)
    return window, whole


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def two_node_ray_cluster(log: Path) -> Iterator[str]:
    """Two one-CPU Ray nodes on 127.0.0.1, each `ray start --block` in its own session: killing
    the session ends the node and nothing else on the machine (no `ray stop`)."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="hpo-ray-", dir="/tmp")  # short: Ray's socket paths
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),  # workers unpickle the trial
        "RAY_TMPDIR": temp_dir,  # a ray.init() elsewhere on the machine never finds this one
        "RAY_AUTH_MODE": "disabled",
    }
    ray_cli = str(Path(sys.executable).with_name("ray"))
    common = ["--block", "--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    port = free_port()
    nodes: list[subprocess.Popen] = []
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        with open(log, "ab") as out:
            for extra in (
                ["--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp_dir}"],
                [f"--address={address}"],
            ):
                agent_port = f"--dashboard-agent-listen-port={free_port()}"
                nodes.append(
                    subprocess.Popen(
                        [ray_cli, "start", *common, agent_port, *extra],
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
                while len(nodes) == 1:  # the second node joins once the head answers
                    with contextlib.suppress(OSError):
                        socket.create_connection(("127.0.0.1", port), timeout=1).close()
                        break
                    if time.monotonic() > deadline or nodes[0].poll() is not None:
                        raise RuntimeError(f"the Ray head did not start; see {log}")
                    time.sleep(0.2)
        while True:
            with contextlib.suppress(ConnectionError):
                ray.init(address=address, log_to_driver=False)
                alive = sum(1 for n in ray.nodes() if n["Alive"])
                ray.shutdown()
                if alive == 2:
                    break
            if time.monotonic() > deadline or any(n.poll() is not None for n in nodes):
                raise RuntimeError(f"the two-node cluster did not start; see {log}")
            time.sleep(1)
        yield address
    finally:
        for node in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)
            node.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def versions() -> str:
    from importlib.metadata import version

    packages = ", ".join(f"{p} {version(p)}" for p in ("ray", "optuna"))
    return f"Python {platform.python_version()}, {packages}, {os.cpu_count()} CPUs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=("sleep", "cpu"), default="sleep")
    parser.add_argument("--engines", default="local,ray", help="local, ray or both")
    parser.add_argument("--trials", type=int, default=12, help="trials per study")
    parser.add_argument("--runs", type=Path, help="study folders (default: a temporary one)")
    args = parser.parse_args()
    runs = args.runs or Path(tempfile.mkdtemp(prefix="throughput-"))
    print(f"{versions()}; load before: {os.getloadavg()[0]:.2f}")
    trial = TwoSecondTrial(args.kind, loops_per_step() if args.kind == "cpu" else 0)
    print(
        f"{args.trials} {args.kind} trials of {TRIAL_SECONDS:g} s per study (ideal: "
        f"{3600 / TRIAL_SECONDS:.0f} trials/h per worker); runs in {runs}"
        + (f"; {trial.loops} loops per step" if trial.loops else "")
    )
    print("engine  workers  window s  whole s  trials/h  efficiency")
    for engine in args.engines.split(","):
        with (
            two_node_ray_cluster(runs / "ray_start.log")
            if engine == "ray"
            else contextlib.nullcontext(None)
        ) as address:
            per_hour = {}
            for workers in (1, 2):
                window, whole = run_study(engine, trial, workers, args.trials, runs, address)
                per_hour[workers] = args.trials * 3600 / window
                efficiency = (
                    f"{per_hour[2] / (2 * per_hour[1]):.3f}" if workers == 2 else "(baseline)"
                )
                print(
                    f"{engine:6}  {workers:7}  {window:8.1f}  {whole:7.1f}  "
                    f"{per_hour[workers]:8.0f}  {efficiency}",
                    flush=True,
                )
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
