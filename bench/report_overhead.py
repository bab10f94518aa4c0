"""What one hpo.report call costs a command trial's script, against a no-op call (issue 16).

The script's side only: hpo.report appends one JSON line to the report file the search names in
HPO_REPORT_FILE (a file in a temporary folder here; the search reads it from another process).
Contenders, each called with the same step and a dict of `--metrics` metrics, in turns of
`--calls` calls, `--rounds` rounds, so that load from other processes falls on all alike:

    noop            def noop(step, metrics): pass              (the baseline)
    report          hpo.report(step, metrics)
    report+prune    hpo.report(...) then hpo.should_prune()    (a script that stops itself)
    report+raise    hpo.report(...) after hpo.raise_when_pruned() (it checks the prune file)
    print           print('hpo: ' + json.dumps(...)) to a file, unbuffered (no hpo imported)

Prints per contender the median µs per call over the rounds (wall clock, and this process's
CPU time: on a busy machine the wall clock also holds the time other processes had the CPU),
and the ratio to noop.

    .venv/bin/python bench/report_overhead.py                 # 20 rounds of 20,000 calls, ~1 min
    .venv/bin/python bench/report_overhead.py --calls 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per turn")
    parser.add_argument("--rounds", type=int, default=20, help="turns of each contender")
    parser.add_argument("--metrics", type=int, default=3, help="metrics per report")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="hpo-report-bench-"))
    os.environ["HPO_REPORT_FILE"] = str(folder / "reports.jsonl")
    os.environ["HPO_PRUNE_FILE"] = str(folder / "pruned")
    sys.path.insert(0, str(ROOT))
    import hpo
    from hpo import command_client

    metrics = {f"metric_{i}": 1.0 / (i + 1) for i in range(args.metrics)}
    printed = io.TextIOWrapper(open(folder / "output.log", "ab", buffering=0), write_through=True)

    def noop(step: int, values: dict) -> None:
        pass

    def print_line(step: int, values: dict) -> None:
        print("hpo: " + json.dumps({"step": step, **values}), file=printed)

    def report_and_check(step: int, values: dict) -> None:
        hpo.report(step, values)
        hpo.should_prune()

    raising = command_client._Channel()  # a second channel: raise_when_pruned on it only
    plain = command_client._channel

    def report_raising(step: int, values: dict) -> None:
        command_client._channel = raising
        try:
            hpo.report(step, values)
        finally:
            command_client._channel = plain

    raising.raise_when_pruned = True
    contenders = {
        "noop": noop,
        "report": hpo.report,
        "report+prune": report_and_check,
        "report+raise": report_raising,
        "print": print_line,
    }
    per_call: dict[str, list[float]] = {name: [] for name in contenders}
    cpu_per_call: dict[str, list[float]] = {name: [] for name in contenders}
    step = 0
    for _ in range(args.rounds):
        for name, call in contenders.items():
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.calls):
                step += 1
                call(step, metrics)
            per_call[name].append((time.perf_counter() - started) / args.calls * 1e6)
            cpu_per_call[name].append((time.process_time() - cpu) / args.calls * 1e6)
    lines = (folder / "reports.jsonl").read_text().count("\n")
    base = statistics.median(per_call["noop"])
    print(f"{args.rounds} rounds x {args.calls} calls, {args.metrics} metrics per report")
    print("| contender | µs per call (median) | x noop | CPU µs per call (median) |")
    print("| --- | ---: | ---: | ---: |")
    for name, times in per_call.items():
        median, cpu_median = statistics.median(times), statistics.median(cpu_per_call[name])
        print(f"| {name} | {median:.2f} | {median / base:.1f} | {cpu_median:.2f} |")
    print(f"report file: {lines} whole lines written")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
