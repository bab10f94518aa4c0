"""Tracking overhead: the same hpo search trial with MLflow tracking on and off, step by step.

Every contender runs whole one-trial studies the way `hpo search --space SPACE` runs them:
load_space, RunnerObjective, get_driver(--driver).run(space, study, objective, tracker), the
tracker built as the CLI builds it (MlflowTracker(uri), system metrics on, connected first).
The trial's params are enqueued (the experiment's own learning rate and weight decay), so every
study trains the same model on the same batches, with the experiment's logging_steps:

    off     tracker None: hpo's NullTracker (what `hpo search --no-track` does)
    sqlite  MLflow's embedded store, sqlite:///<tmp>/mlflow.db: hpo search's default
    server  a real `mlflow server` on 127.0.0.1 (free port, sqlite backend, 1 worker) that this
            script starts; its CPU time is counted with the server contender's
    control a second `off`: what the method reads when nothing differs, its noise

How it is timed. Each contender is a process of its own, and they take turns one optimizer
step at a time (off 1, sqlite 1, server 1, off 2, ...), so a burst of load from other processes
lands on all of them alike. Tracking sends from background threads (the buffer's sender, the
system-metrics sampler), so between its turns a contender's process is stopped whole
(SIGSTOP, then SIGCONT at its next turn): whatever its threads do happens in its own turns.
Its clocks run on while it is stopped, so its tracker flushes every 2 s x N and samples system
metrics every 10 s x N of wall time (N contenders): as often, per step of its own, as alone.
A turn is timed by the coordinating process, from handing the turn over to getting it back.

A study's segments are its turns: the first (start_study, the trial's data and model), one per
optimizer step (data, forward, backward, optimizer, the report every logging_steps, and what
the tracking threads do meanwhile), the last (the final step and evaluation, end_study with its
last flush). Steps that evaluate (evaluation, checkpoints, samples and their report) and the
first --skip are left out of the step figures. Ratios x / off:

    step        median over all steps of all rounds of x's step k / off's step k (taken
                back to back, so under the same load)
    mean step   median over rounds of x's mean step / off's: every step's share of the
                reports and of the tracking threads' bursts; the goal is read on it
    step CPU    the same with the process's CPU time (all its threads)
    study       median over rounds of the whole study's time (sum of its turns): a one-trial
                study also pays its study's own start and end; CPU: the server's CPU included

After an untimed warm-up round (imports, the new sqlite schema, the server's first requests),
--rounds rounds run, each in another order of the contenders (every permutation, the first
place going to each contender in turn). Goal
(issue 4): tracking on / off <= 1.02.

    OMP_NUM_THREADS=1 .venv/bin/python bench/tracking_overhead.py      # ~12 min on 2 cores
    OMP_NUM_THREADS=1 .venv/bin/python bench/tracking_overhead.py --logging-steps 1   # every step
    .venv/bin/python bench/tracking_overhead.py --contenders off,sqlite,control  # torch's threads

On a machine that others share, one torch thread per contender (OMP_NUM_THREADS=1) keeps the
figures readable: with two, a step stalls whenever another process takes one of the cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any

import mlflow
import optuna
import torch

import runner.trial_setup
from hpo.drivers import get_driver
from hpo.drivers.base import StudySpec
from hpo.objective import RunnerObjective
from hpo.space import load_space
from hpo.tracking import MlflowTracker
from runner.config import check_key, load_config

CONTENDERS = ("off", "sqlite", "server", "control")
FLUSH_INTERVAL, SYSTEM_METRICS_INTERVAL = 2.0, 10.0  # MlflowTracker's defaults (seconds)

# ----------------------------------------------------------------------------- a contender


class _CountingTracker(MlflowTracker):
    """MlflowTracker that keeps its buffer's counters when it closes (metrics sent, sender CPU)."""

    stats: Any = None

    def close(self, timeout: float | None = None) -> None:
        if self.buffer is not None:
            self.stats = self.buffer.stats
        super().close(timeout)


class _Turns:
    """A contender's side of the lockstep: every optimizer step starts by handing the turn back.

    run_trial's prepare_data is swapped for one whose data reports the fetch of each step's
    first micro-batch; the coordinator stops this process there until its next turn.
    """

    def __init__(self, conn) -> None:
        self.conn = conn
        self._prepare_data = runner.trial_setup.prepare_data
        runner.trial_setup.prepare_data = self.prepare_data

    def prepare_data(self, config):
        return _TurnData(self._prepare_data(config), config.train, self.tick)

    def tick(self) -> None:
        self.conn.send(("tick", time.process_time()))
        if self.conn.recv()[0] == "exit":  # the coordinator stops early: no turn will come
            os._exit(1)


class _TurnData:
    def __init__(self, data, t, tick) -> None:
        self._data, self._accumulation, self._tick = data, t.gradient_accumulation_steps, tick

    def train_batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        if index % self._accumulation == 0:
            self._tick()
        return self._data.train_batch(index, batch_size)

    def __getattr__(self, name: str):
        return getattr(self._data, name)


def contender_main(contender: str, conn, args: argparse.Namespace, tmp: Path, uri: str) -> None:
    """A contender's process: runs the studies the coordinator names, one turn at a time."""
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("runner").setLevel(logging.WARNING)  # as hpo search does
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines, once per study
    _Turns(conn)
    conn.send(("ready", None))
    while True:
        message = conn.recv()
        if message[0] == "exit":
            return
        _, name, max_steps = message
        try:
            summary = run_study(contender, name, max_steps, args, tmp, uri)
        except Exception:  # noqa: BLE001 (handed to the coordinator, which stops the run)
            conn.send(("error", traceback.format_exc()))
            return
        conn.send(("done", summary))


def run_study(
    contender: str, name: str, max_steps: int, args: argparse.Namespace, tmp: Path, uri: str
) -> dict[str, float]:
    """One one-trial study, as `hpo search` runs it; its CPU time and tracking counters."""
    cpu_start = time.process_time()
    space = load_space(args.space, driver=args.driver, config_key_check=check_key)
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
    study = StudySpec.for_space(space, name=name, runs=tmp / contender, quiet=True, enqueue=enqueue)
    tracker = None
    if contender in ("sqlite", "server"):
        n = len(args.contenders.split(","))  # our clocks run n times as fast as our steps
        tracker = _CountingTracker(
            uri,
            flush_interval=FLUSH_INTERVAL * n,
            system_metrics_interval=SYSTEM_METRICS_INTERVAL * n,
        )
        tracker.connect()  # hpo search connects before the study starts
    result = get_driver(args.driver).run(space, study, objective, tracker)
    trial = result.trials[0]
    if trial.state != "complete":
        raise RuntimeError(f"{name}: the trial ended {trial.state}: {trial.reason}")
    shutil.rmtree(study.dir, ignore_errors=True)  # checkpoints: a few MB per study
    stats = tracker.stats if tracker is not None else None
    return {
        "cpu_start": cpu_start,
        "cpu_end": time.process_time(),
        "metrics_sent": stats.metrics_sent if stats else 0,
        "sender_cpu": stats.send_cpu_seconds if stats else 0.0,
    }


# ----------------------------------------------------------------------------- the mlflow server


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


# ----------------------------------------------------------------------------- the lockstep


@dataclasses.dataclass
class Study:
    """One contender's study in one round: its turns' wall and CPU times, and its counters."""

    walls: list[float]  # per turn: the first (setup), one per step, the last (tail)
    cpus: list[float]  # CPU time of the contender's process in the same turns
    metrics_sent: int
    sender_cpu: float  # s, the tracker's sending thread
    server_cpu: float = 0.0  # s, the mlflow server during the round (server contender only)

    def steps(self, skip: int, eval_steps: int, clock: str = "wall") -> list[float]:
        """Times of steps skip+1 .. last-1 (1-based), without those that evaluate."""
        times = self.walls if clock == "wall" else self.cpus
        return [times[k] for k in range(skip + 1, len(times) - 1) if k % eval_steps != 0]


class Lockstep:
    """Contender processes that run one optimizer step at a time each, in turn; see the doc."""

    def __init__(
        self, contenders: list[str], args: argparse.Namespace, tmp: Path, uris: dict[str, str]
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self.processes: dict[str, Any] = {}
        self.conns: dict[str, Any] = {}
        for contender in contenders:
            parent, child = context.Pipe()
            process = context.Process(
                target=contender_main,
                args=(contender, child, args, tmp, uris.get(contender, "")),
                daemon=True,
            )
            process.start()
            self.processes[contender], self.conns[contender] = process, parent
        for contender in contenders:
            self._receive(contender)  # ("ready", None): imports done
            os.kill(self.processes[contender].pid, signal.SIGSTOP)

    def round(self, order: tuple[str, ...], name: str, max_steps: int) -> dict[str, Study]:
        """Every contender runs study `name` of max_steps steps, one turn at a time."""
        live, turn = list(order), 0
        walls: dict[str, list[float]] = {c: [] for c in order}
        ticks: dict[str, list[float]] = {c: [] for c in order}
        done: dict[str, dict] = {}
        while live:
            contender = live[turn % len(live)]
            pid, conn = self.processes[contender].pid, self.conns[contender]
            os.kill(pid, signal.SIGCONT)
            started = time.perf_counter()
            conn.send(("go",) if walls[contender] else ("study", name, max_steps))
            kind, payload = self._receive(contender)
            walls[contender].append(time.perf_counter() - started)
            os.kill(pid, signal.SIGSTOP)
            if kind == "tick":
                ticks[contender].append(payload)
                turn += 1
            else:  # "done": the next contender moves up into this place
                done[contender] = payload
                live.remove(contender)
        studies = {}
        for contender in order:
            summary = done[contender]
            marks = [summary["cpu_start"], *ticks[contender], summary["cpu_end"]]
            cpus = [b - a for a, b in zip(marks, marks[1:], strict=False)]
            studies[contender] = Study(
                walls[contender], cpus, summary["metrics_sent"], summary["sender_cpu"]
            )
        return studies

    def close(self) -> None:
        for contender, process in self.processes.items():
            if process.is_alive():
                os.kill(process.pid, signal.SIGCONT)
                try:
                    self.conns[contender].send(("exit",))
                except OSError:
                    pass
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()

    def _receive(self, contender: str) -> tuple[str, Any]:
        conn = self.conns[contender]
        while not conn.poll(1.0):
            if not self.processes[contender].is_alive():
                raise RuntimeError(f"contender {contender} died")
        kind, payload = conn.recv()
        if kind == "error":
            raise RuntimeError(f"contender {contender} failed:\n{payload}")
        return kind, payload


# ----------------------------------------------------------------------------- the comparison


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="experiments/spaces/lr_wd.yaml")
    parser.add_argument("--driver", default="optuna", help="hpo search's default: optuna")
    parser.add_argument(
        "--contenders", default=",".join(CONTENDERS), help=f"from {','.join(CONTENDERS)}"
    )
    parser.add_argument(
        "--rounds", type=int, default=6, help="timed rounds, each in the next order of contenders"
    )
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
        parser.error(f"--contenders: two or more from {', '.join(CONTENDERS)}, off included")
    space = load_space(args.space, driver=args.driver)
    config = load_config(space.experiment)
    max_steps = args.max_steps or space.budget.max_steps
    eval_steps = config.eval.eval_steps
    print(
        f"{space.experiment} via {args.space}, driver {args.driver}, {max_steps} steps, logging "
        f"every {args.logging_steps or config.train.logging_steps}, eval every {eval_steps}; "
        f"{args.rounds} rounds of {', '.join(contenders)} in lockstep; "
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"mlflow {mlflow.__version__}, optuna {optuna.__version__}",
        flush=True,
    )

    # a plain kill still resumes and ends the stopped contenders and the server (finally:)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"{sys.argv[0]}: terminated"))
    with tempfile.TemporaryDirectory(prefix="hpo-bench-tracking-") as folder:
        tmp = Path(folder)
        os.environ.setdefault("HPO_CACHE_DIR", str(tmp / "cache"))
        server = MlflowServer(tmp) if "server" in contenders else None
        lockstep = None
        try:
            uris = {"sqlite": f"sqlite:///{tmp / 'mlflow.db'}"}
            if server is not None:
                uris["server"] = server.uri
            lockstep = Lockstep(contenders, args, tmp, uris)
            lockstep.round(tuple(contenders), "warm", min(max_steps, args.skip + 3))  # untimed
            # every order, and the first place taken by each contender in turn
            firsts = [
                [p for p in itertools.permutations(contenders) if p[0] == c] for c in contenders
            ]
            orders = [order for group in zip(*firsts, strict=True) for order in group]
            rounds: list[dict[str, Study]] = []
            for r in range(args.rounds):
                order = orders[r % len(orders)]
                before = server.cpu_seconds() if server else 0.0
                studies = lockstep.round(order, f"round-{r}", max_steps)
                if server:
                    studies["server"].server_cpu = server.cpu_seconds() - before
                rounds.append(studies)
                print_round(r, order, studies, args.skip, eval_steps)
        finally:
            if lockstep is not None:
                lockstep.close()
            if server is not None:
                server.stop()
    print_table(contenders, rounds, args.skip, eval_steps)


def ratios(
    rounds: list[dict[str, Study]], contender: str, skip: int, eval_steps: int
) -> dict[str, list[float]]:
    """Per round, contender / off: step (the median of step-k pairs), mean step, CPU, study."""
    out: dict[str, list[float]] = {}
    for studies in rounds:
        on, off = studies[contender], studies["off"]
        walls = on.steps(skip, eval_steps), off.steps(skip, eval_steps)
        cpus = on.steps(skip, eval_steps, "cpu"), off.steps(skip, eval_steps, "cpu")
        figures = {
            "step": statistics.median(a / b for a, b in zip(*walls, strict=True)),
            "mean step": statistics.fmean(walls[0]) / statistics.fmean(walls[1]),
            "step CPU": statistics.fmean(cpus[0]) / statistics.fmean(cpus[1]),
            "study": sum(on.walls) / sum(off.walls),
            "study CPU": (sum(on.cpus) + on.server_cpu) / sum(off.cpus),
        }
        for figure, value in figures.items():
            out.setdefault(figure, []).append(value)
    return out


def print_round(
    r: int, order: tuple[str, ...], studies: dict[str, Study], skip: int, eval_steps: int
) -> None:
    parts = []
    for contender in order:
        mean = statistics.fmean(studies[contender].steps(skip, eval_steps))
        part = f"{contender} {mean * 1e3:.1f} ms"
        if contender != "off":
            x = ratios([studies], contender, skip, eval_steps)
            part += f" (x off {x['mean step'][0]:.3f}, CPU {x['step CPU'][0]:.3f})"
        parts.append(part)
    print(f"round {r + 1}, mean step: " + "; ".join(parts), flush=True)


def print_table(
    contenders: list[str], rounds: list[dict[str, Study]], skip: int, eval_steps: int
) -> None:
    figures = ("step", "mean step", "step CPU", "study", "study CPU")
    tracked = [c for c in contenders if c != "off"]
    per_contender = {c: ratios(rounds, c, skip, eval_steps) for c in tracked}
    print("\nx / off, median over rounds (min-max):")
    print("| contender | " + " | ".join(figures) + " |")
    print("| --- |" + " ---: |" * len(figures))
    for contender in tracked:
        cells = [
            f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})"
            for v in (per_contender[contender][f] for f in figures)
        ]
        print(f"| {contender} | " + " | ".join(cells) + " |")
    print("\nper study, median over rounds:")
    print(
        "| contender | median step (ms) | mean step (ms) | mean step CPU (ms) | study (s) "
        "| study CPU (s) | metrics sent | sender CPU (ms) | server CPU (s) |"
    )
    print("| --- |" + " ---: |" * 8)
    for contender in contenders:
        studies = [r[contender] for r in rounds]

        def med(values) -> float:
            return statistics.median(list(values))

        print(
            f"| {contender} "
            f"| {med(statistics.median(s.steps(skip, eval_steps)) for s in studies) * 1e3:.1f} "
            f"| {med(statistics.fmean(s.steps(skip, eval_steps)) for s in studies) * 1e3:.1f} "
            f"| {med(statistics.fmean(s.steps(skip, eval_steps, 'cpu')) for s in studies) * 1e3:.1f} "
            f"| {med(sum(s.walls) for s in studies):.2f} | {med(sum(s.cpus) for s in studies):.2f} "
            f"| {med(s.metrics_sent for s in studies):g} "
            f"| {med(s.sender_cpu for s in studies) * 1e3:.0f} "
            f"| {med(s.server_cpu for s in studies):.2f} |"
        )
    for figure in ("mean step", "step CPU"):
        worst = max(statistics.median(per_contender[c][figure]) for c in tracked if c != "control")
        verdict = "met" if worst <= 1.02 else "MISSED"
        print(f"goal (issue 4): tracking on / off <= 1.02 ({figure}): worst {worst:.3f}, {verdict}")


if __name__ == "__main__":
    main()
