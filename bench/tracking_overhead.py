"""Tracking overhead: the same hpo search trial with MLflow tracking on and off, in one process.

Every contender runs whole one-trial studies the way `hpo search --space SPACE` runs them:
load_space, RunnerObjective, get_driver(--driver).run(space, study, objective, tracker), the
tracker built as the CLI builds it (MlflowTracker(uri, system_metrics=True), connected first).
The trial's params are enqueued (the experiment's own learning rate and weight decay), so every
study trains the same model on the same batches:

    off     tracker None: hpo's NullTracker (what `hpo search --no-track` does)
    sqlite  MLflow's embedded store, sqlite:///<tmp>/mlflow.db: hpo search's default
    server  a real `mlflow server` on 127.0.0.1 (free port, sqlite backend, 1 worker) that this
            script starts; its own CPU time is shown apart, it runs outside this process

Tracking sends from a background thread that overlaps training, and a study ends only once all
of it is sent (end_study flushes). So contenders alternate whole studies, never steps: every
byte a tracker sends is paid inside its own study. After an untimed warm-up round (imports, the
new sqlite schema, the server's first requests), --rounds rounds run each contender once, the
order rotated every round. Per study:

    step    periods between the starts of two consecutive optimizer steps: data, forward,
            backward, optimizer, the report every logging_steps, and whatever the sending and
            system-metrics threads take from training; without the first --skip steps and
            without the steps that evaluate (evaluation, checkpoints and samples: the same work
            in every contender, and the reports after them); in wall time, and in this
            process's CPU time (all threads: the sending and system-metrics threads included),
            which the load of other processes moves far less than wall time
    trial   the objective call as trial.json times it: run_trial from its config to its result
    study   the whole driver.run call: the trial plus start_study (parent run, study files as
            artifacts, git and DVC provenance) and end_study (the last flush, the run's end);
            its CPU time adds the mlflow server's for the server contender

x / off is the ratio to the `off` study of the same round (run next to it, under about the same
load); the tables show the median over rounds. "median step" compares typical steps; "mean step"
holds every step's share of the reports and of the sending thread's bursts, so the goal is read
on it (wall time; its CPU time beside it for a busy machine). Goal (issue 4): on / off <= 1.02.

    .venv/bin/python bench/tracking_overhead.py                       # ~10 min on 2 busy cores
    .venv/bin/python bench/tracking_overhead.py --logging-steps 1     # a report every step
    .venv/bin/python bench/tracking_overhead.py --contenders off,sqlite --rounds 8
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import optuna
import torch

import runner.loop
from hpo.drivers import get_driver
from hpo.drivers.base import StudySpec
from hpo.objective import RunnerObjective
from hpo.space import load_space
from hpo.tracking import MlflowTracker
from runner.config import check_key, load_config

CONTENDERS = ("off", "sqlite", "server")
_PREPARE_DATA = runner.loop.prepare_data


class _CountingTracker(MlflowTracker):
    """MlflowTracker that keeps its buffer's counters when it closes (metrics sent, sender CPU)."""

    stats: Any = None

    def close(self, timeout: float | None = None) -> None:
        if self.buffer is not None:
            self.stats = self.buffer.stats
        super().close(timeout)


class _StepClock:
    """Stamps the start of every optimizer step: run_trial's first micro-batch fetch of a step.

    Each stamp is (wall time, this process's CPU time: every thread, the tracker's included).
    """

    def __init__(self) -> None:
        self.starts: list[tuple[float, float]] = []

    def prepare_data(self, config):
        data = _PREPARE_DATA(config)
        return _StampedData(data, config.train.gradient_accumulation_steps, self.starts)


class _StampedData:
    def __init__(self, data, accumulation: int, starts: list[tuple[float, float]]) -> None:
        self._data, self._accumulation, self._starts = data, accumulation, starts

    def train_batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        if index % self._accumulation == 0:
            self._starts.append((time.perf_counter(), time.process_time()))
        return self._data.train_batch(index, batch_size)

    def __getattr__(self, name: str):
        return getattr(self._data, name)


class MlflowServer:
    """`mlflow server` on 127.0.0.1 in its own process group; stop() ends it and its workers."""

    def __init__(self, root: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"
        command = [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination",
            str(root / "server-artifacts"),
        ]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + 120
        while not self._healthy():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mlflow server did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.3)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        """CPU time of the server and its workers so far."""
        import psutil

        try:
            parent = psutil.Process(self.process.pid)
            processes = [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0.0
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@dataclasses.dataclass
class Measured:
    steps: list[float]  # step periods (s), evaluation steps and the first --skip left out
    step_cpu: list[float]  # CPU time of this process (all threads) in the same periods
    trial: float  # s, trial.json duration
    study: float  # s, the driver.run call
    study_cpu: float  # s, this process's CPU time during driver.run (all its threads)
    metrics_sent: int = 0
    sender_cpu: float = 0.0  # s, CPU time of the tracker's sending thread
    server_cpu: float = 0.0  # s, CPU time of the mlflow server during the study


def run_one(
    contender: str, name: str, args: argparse.Namespace, tmp: Path, server: MlflowServer | None
) -> Measured:
    """One whole one-trial study, as `hpo search` runs it; returns its times."""
    space = load_space(args.space, driver=args.driver, config_key_check=check_key)
    max_steps = args.max_steps or space.budget.max_steps
    space = space.with_budget(trials=1, timeout=None, max_steps=max_steps)
    base = load_config(space.experiment)
    enqueue = (
        {
            "train.learning_rate": base.train.learning_rate,
            "train.weight_decay": base.train.weight_decay,
        },
    )
    overrides = [f"train.logging_steps={args.logging_steps}"] if args.logging_steps else []
    objective = RunnerObjective(
        space.experiment,
        metric=space.objective.metric,
        greater_is_better=space.objective.direction == "maximize",
        max_steps=max_steps,
        overrides=overrides,
    )
    study = StudySpec.for_space(space, name=name, runs=tmp / "runs", quiet=True, enqueue=enqueue)
    tracker = None
    if contender != "off":
        uri = server.uri if contender == "server" else f"sqlite:///{tmp / 'mlflow.db'}"
        tracker = _CountingTracker(uri, system_metrics=True)
        tracker.connect()  # hpo search connects before the study starts
    clock = _StepClock()
    runner.loop.prepare_data = clock.prepare_data
    server_before = server.cpu_seconds() if contender == "server" else 0.0
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        result = get_driver(args.driver).run(space, study, objective, tracker)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        runner.loop.prepare_data = _PREPARE_DATA
    trial = result.trials[0]
    if trial.state != "complete":
        raise RuntimeError(f"{name}: the trial ended {trial.state}: {trial.reason}")
    # period i holds step i + 1, which evaluates when (i + 1) % eval_steps == 0
    kept = [
        (b[0] - a[0], b[1] - a[1])
        for i, (a, b) in enumerate(zip(clock.starts, clock.starts[1:], strict=False))
        if i >= args.skip and (i + 1) % base.eval.eval_steps != 0
    ]
    measured = Measured([w for w, _ in kept], [c for _, c in kept], trial.duration, wall, cpu)
    if tracker is not None and tracker.stats is not None:
        measured.metrics_sent = tracker.stats.metrics_sent
        measured.sender_cpu = tracker.stats.send_cpu_seconds
    if contender == "server":
        measured.server_cpu = server.cpu_seconds() - server_before
    shutil.rmtree(study.dir, ignore_errors=True)  # checkpoints: a few MB per study
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="experiments/spaces/lr_wd.yaml")
    parser.add_argument("--driver", default="optuna", help="hpo search's default: optuna")
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help=f"from {','.join(CONTENDERS)}"
    )
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds, order rotated")
    parser.add_argument(
        "--max-steps", type=int, help="steps per trial (default: the space's budget.max_steps)"
    )
    parser.add_argument(
        "--logging-steps", type=int, help="train.logging_steps (default: the experiment's)"
    )
    parser.add_argument("--skip", type=int, default=10, help="first steps left out of 'step'")
    args = parser.parse_args()
    contenders = args.contenders.split(",")
    if "off" not in contenders or len(contenders) < 2 or set(contenders) - set(CONTENDERS):
        parser.error(f"--contenders: from {', '.join(CONTENDERS)}, off included")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("runner").setLevel(logging.WARNING)  # as hpo search does
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines, once per study

    with tempfile.TemporaryDirectory(prefix="hpo-bench-tracking-") as folder:
        tmp = Path(folder)
        os.environ.setdefault("HPO_CACHE_DIR", str(tmp / "cache"))
        server = MlflowServer(tmp) if "server" in contenders else None
        try:
            space = load_space(args.space, driver=args.driver)
            config = load_config(space.experiment)
            print(
                f"{space.experiment} via {args.space}, driver {args.driver}, "
                f"{args.max_steps or space.budget.max_steps} steps, logging every "
                f"{args.logging_steps or config.train.logging_steps}, eval every "
                f"{config.eval.eval_steps}; {args.rounds} rounds of {', '.join(contenders)}; "
                f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
                f"mlflow {mlflow.__version__}, optuna {optuna.__version__}",
                flush=True,
            )
            for contender in contenders:  # untimed: imports, schema, first requests
                run_one(contender, f"warm-{contender}", args, tmp, server)
            rounds: list[dict[str, Measured]] = []
            for r in range(args.rounds):
                order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
                rounds.append({c: run_one(c, f"{c}-{r}", args, tmp, server) for c in order})
                print_round(r, order, rounds[-1])
        finally:
            if server is not None:
                server.stop()
    print_table(contenders, rounds)


def ratios(rounds: list[dict[str, Measured]], contender: str) -> dict[str, list[float]]:
    """Per round: contender / off for each figure."""
    out: dict[str, list[float]] = {}
    for measured in rounds:
        on, off = measured[contender], measured["off"]
        pairs = {
            "median step": (statistics.median(on.steps), statistics.median(off.steps)),
            "mean step": (statistics.fmean(on.steps), statistics.fmean(off.steps)),
            "mean step CPU": (statistics.fmean(on.step_cpu), statistics.fmean(off.step_cpu)),
            "trial": (on.trial, off.trial),
            "study": (on.study, off.study),
            "study CPU": (on.study_cpu + on.server_cpu, off.study_cpu),
        }
        for figure, (a, b) in pairs.items():
            out.setdefault(figure, []).append(a / b)
    return out


def print_round(r: int, order: list[str], measured: dict[str, Measured]) -> None:
    parts = []
    for contender in order:
        m = measured[contender]
        part = f"{contender} {statistics.fmean(m.steps) * 1e3:.1f} ms"
        if contender != "off":
            mean = ratios([measured], contender)
            part += f" (x off {mean['mean step'][0]:.3f}, CPU {mean['mean step CPU'][0]:.3f})"
        parts.append(part)
    print(f"round {r + 1}, mean step: " + "; ".join(parts), flush=True)


def print_table(contenders: list[str], rounds: list[dict[str, Measured]]) -> None:
    figures = ("median step", "mean step", "mean step CPU", "trial", "study", "study CPU")
    print("\nx / off, median over rounds (min-max):")
    print("| contender | " + " | ".join(figures) + " |")
    print("| --- |" + " ---: |" * len(figures))
    for contender in contenders:
        if contender == "off":
            continue
        per_round = ratios(rounds, contender)
        cells = [
            f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})"
            for v in (per_round[f] for f in figures)
        ]
        print(f"| {contender} | " + " | ".join(cells) + " |")
    print("\nmedians over rounds, per study:")
    print(
        "| contender | median step (ms) | mean step (ms) | mean step CPU (ms) | trial (s) "
        "| study (s) | metrics sent | sender CPU (ms) | server CPU (s) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for contender in contenders:
        ms = [m[contender] for m in rounds]

        def med(values) -> float:
            return statistics.median(list(values))

        print(
            f"| {contender} | {med(statistics.median(m.steps) for m in ms) * 1e3:.1f} "
            f"| {med(statistics.fmean(m.steps) for m in ms) * 1e3:.1f} "
            f"| {med(statistics.fmean(m.step_cpu) for m in ms) * 1e3:.1f} "
            f"| {med(m.trial for m in ms):.2f} | {med(m.study for m in ms):.2f} "
            f"| {med(m.metrics_sent for m in ms):g} | {med(m.sender_cpu for m in ms) * 1e3:.0f} "
            f"| {med(m.server_cpu for m in ms):.2f} |"
        )
    tracked = [c for c in contenders if c != "off"]
    for figure in ("mean step", "mean step CPU") if tracked else ():
        worst = max(statistics.median(ratios(rounds, c)[figure]) for c in tracked)
        verdict = "met" if worst <= 1.02 else "MISSED"
        print(f"goal (issue 4): tracking on / off <= 1.02 ({figure}): worst {worst:.3f}, {verdict}")


if __name__ == "__main__":
    main()
