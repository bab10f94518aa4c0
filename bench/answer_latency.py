"""What waiting for the search's answer costs a command trial's script: hpo.report followed by
hpo.should_prune(), with a real search side (hpo.command_watch.Watch) in this process serving a
real script in another, against the same loop with should_prune(wait=False) (no wait).

Contenders, each a script of `--calls` report + should_prune calls, in `--rounds` rounds
alternating so that load from other processes falls on all alike:

    no-wait     should_prune(wait=False): the answer is not waited for (the baseline)
    doorbell    should_prune(): the report rings the doorbell (a named pipe), the search reads
                it at once, decides (a pruner that never prunes) and answers
    polling     should_prune() with no doorbell: the search finds the report at its next look
                (every POLL_SECONDS)

Prints per contender the median over rounds of the script's µs per report + should_prune, and
the ratio to no-wait.

    .venv/bin/python bench/answer_latency.py                     # 5 rounds of 300 calls
    .venv/bin/python bench/answer_latency.py --rounds 3 --calls 100
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hpo.command_client import (  # noqa: E402
    ANSWER_FILE_ENV,
    PRUNE_FILE_ENV,
    REPORT_FILE_ENV,
    WAKE_FILE_ENV,
)
from hpo.command_watch import Doorbell, Tail, TrialState, Watch  # noqa: E402
from hpo.space import Objective  # noqa: E402

SCRIPT = """
import json, sys, time, hpo
calls, wait = int(sys.argv[1]), sys.argv[2] == "wait"
took = []
for step in range(1, calls + 1):
    start = time.perf_counter()
    hpo.report(step, {"val_loss": 1.0 / step})
    hpo.should_prune(wait=wait)
    took.append(time.perf_counter() - start)
print(json.dumps(took))
"""


class NeverPrunes:
    """The driver's side of a trial whose pruner keeps it: it only counts the reports."""

    def __init__(self) -> None:
        self.reports = 0

    def report(self, step: int, metrics: dict) -> None:
        self.reports += 1

    def should_stop(self) -> bool:
        return False


def one_round(contender: str, calls: int) -> float:
    """The script's median µs per report + should_prune under this contender."""
    folder = Path(tempfile.mkdtemp(prefix="hpo-answer-bench-"))
    reports, answers = folder / "reports.jsonl", folder / "answered"
    reports.touch()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        REPORT_FILE_ENV: str(reports),
        PRUNE_FILE_ENV: str(folder / "pruned"),
        ANSWER_FILE_ENV: str(answers),
    }
    doorbell = Doorbell() if contender == "doorbell" else None
    if doorbell is not None and doorbell.path is not None:
        env[WAKE_FILE_ENV] = doorbell.path
    wait = "nowait" if contender == "no-wait" else "wait"
    out = folder / "out.json"
    with out.open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(calls), wait], env=env, stdout=stdout
        )
    watch = Watch(process, kill_after=10.0, prune_mark=folder / "pruned", doorbell=doorbell)
    reporter = NeverPrunes()
    try:
        watch.run(
            reporter,
            TrialState([Objective("val_loss", "minimize")]),
            Tail(reports, answers=answers),
        )
    finally:
        watch.kill()
        if doorbell is not None:
            doorbell.close()
    took = json.loads(out.read_text())
    shutil.rmtree(folder)
    assert reporter.reports == calls, (contender, reporter.reports)
    return statistics.median(took) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300, help="report + should_prune per script")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    contenders = ("no-wait", "doorbell", "polling")
    seen: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name in contenders:
            seen[name].append(one_round(name, args.calls))
    base = statistics.median(seen["no-wait"])
    print("| contender | µs per report + should_prune (median of rounds) | x no-wait |")
    print("| --- | ---: | ---: |")
    for name in contenders:
        value = statistics.median(seen[name])
        print(f"| {name} | {value:.1f} | {value / base:.1f} |")


if __name__ == "__main__":
    main()
