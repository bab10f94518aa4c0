"""Tracking cost: MlflowTracker's calls and sending thread per 1000 metrics, and a step-time ratio.

Three figures, measured in one run against one store (sqlite:///mlflow.db in a temporary
folder, or --tracking-uri):

    calls       wall time of log_metrics in the driver's thread, per 1000 metrics (what a
                trial in this process waits for: an append to memory)
    sender      CPU time of the buffer's sending thread per 1000 metrics (log_batch requests,
                at most 1000 metrics each), which competes with training for the interpreter
    step ratio  a synthetic pure-Python "step" (holds the GIL: the worst case for the sending
                thread) of --step-ms, reporting as the runner does (6 train metrics every
                --logging-steps, 2 validation metrics every --eval-steps), with the tracker
                against without it; steps alternate with / without, so load from other
                processes lands on both alike; total time with / total time without (a mean:
                the sending thread works in bursts, every flush interval). Goal <= 1.02.

    .venv/bin/python bench/tracking_calls.py
    .venv/bin/python bench/tracking_calls.py --tracking-uri http://127.0.0.1:5000 --step-ms 20
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path

TRAIN = {
    "loss": 2.5,
    "lr": 3e-4,
    "grad_norm": 0.9,
    "tokens_per_sec": 5e4,
    "step_time": 0.05,
    "peak_memory_mb": 512.0,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="default: sqlite:///mlflow.db in a temporary folder")
    parser.add_argument("--metrics", type=int, default=30_000, help="metrics logged for 'calls'")
    parser.add_argument("--step-ms", type=float, default=20.0, help="synthetic step time")
    parser.add_argument("--steps", type=int, default=600, help="synthetic steps of each kind")
    parser.add_argument("--logging-steps", type=int, default=1, help="train metrics every N steps")
    parser.add_argument("--eval-steps", type=int, default=50, help="val metrics every N steps")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        tracker, study = start(args.tracking_uri, Path(tmp))
        calls_us, sender_ms = per_thousand(tracker, args.metrics)
        ratio = step_ratio(tracker, args)
        tracker.end_study(study)
    print(f"store        {tracker.tracking_uri}")
    print(f"calls        {calls_us:8.1f} us per 1000 metrics (log_metrics, driver's thread)")
    print(f"sender       {sender_ms:8.1f} ms CPU per 1000 metrics (sending thread)")
    print(
        f"step ratio   {ratio:8.4f}  with / without tracking, {args.step_ms:g} ms steps, "
        f"train metrics every {args.logging_steps} step(s)"
    )


def start(uri: str | None, tmp: Path):
    from hpo.drivers.base import StudySpec, TrialRecord
    from hpo.space import space_from_dict
    from hpo.study import StudyResult, open_study
    from hpo.tracking import MlflowTracker

    space = space_from_dict(
        {
            "objective": "val_loss",
            "budget": {"trials": 1},
            "params": {"lr": {"type": "float", "low": 1e-5, "high": 1e-1}},
        },
        source="bench.yaml",
        driver="random",
    )
    spec = StudySpec.for_space(space, runs=tmp / "runs")
    open_study(spec, space, "random", [])
    tracker = MlflowTracker(uri, experiment_name="bench-tracking", system_metrics=False)
    tracker.start_study(space, spec, "random")
    tracker.start_trial(0, {"lr": 1e-3})
    record = TrialRecord(0, {"lr": 1e-3}, "complete", values=[1.0])
    result = StudyResult(
        "bench", "random", spec.dir, space.objectives, (record,), record, (), 1.0, "budget"
    )
    return tracker, result


def per_thousand(tracker, n: int) -> tuple[float, float]:
    stats = tracker.buffer.stats
    cpu_before, sent_before = stats.send_cpu_seconds, stats.metrics_sent
    spent = 0.0
    for step in range(n // len(TRAIN)):
        started = time.perf_counter()
        tracker.log_metrics(0, step, TRAIN)
        spent += time.perf_counter() - started
    tracker.flush()
    sent = stats.metrics_sent - sent_before
    return spent / n * 1e9, (stats.send_cpu_seconds - cpu_before) / sent * 1e6


def busy(seconds: float) -> None:
    deadline = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < deadline:
        x += 1


def step_ratio(tracker, args) -> float:
    with_tracking = without = 0.0
    step_s = args.step_ms / 1000
    base = 10_000_000  # steps after the 'calls' figure's
    for step in range(args.steps):
        started = time.perf_counter()
        busy(step_s)
        without += time.perf_counter() - started
        started = time.perf_counter()
        busy(step_s)
        if step % args.logging_steps == 0:
            tracker.log_metrics(0, base + step, TRAIN)
        if step % args.eval_steps == 0:
            tracker.log_metrics(0, base + step, {"val_loss": 2.0, "val_perplexity": 7.4})
        with_tracking += time.perf_counter() - started
    tracker.flush()
    return with_tracking / without


if __name__ == "__main__":
    main()
