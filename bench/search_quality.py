"""Search quality: the best validation loss each driver finds on the default lm experiment.

Every study searches experiments/spaces/lr_wd.yaml (learning rate and weight decay, log
scale) on experiments/lm_tiny.yaml with real training trials, run in this process one after
another through the public API (load_space, RunnerObjective, get_driver(...).run), each with
--max-steps steps per trial. Contenders, each run once per seed with --trials trials:

    random      random search: the baseline
    tpe-pruned  multivariate TPE (4 random startup trials) + median pruner (after 3 finished
                trials), fed every evaluation: lr_wd.yaml's settings until issue 19
    tpe-auto    (optional) the same TPE with hpo's default pruner (auto), as lr_wd.yaml now
    bo          bayesian-optimization, expected improvement (4 random init points)
    tpe         (optional) optuna TPE without pruning
    tpe-percentile, tpe-sha  (optional) TPE with the percentile pruner (25th percentile, after
                the space file's startup trials) or successive halving (reduction factor 3)
    tpe-hyperband  (optional) TPE with hyperband (max resource: --max-steps, reduction 3)
    gp-pruned   (optional) optuna's Gaussian-process sampler with the median pruner
    ray         (optional) Ray Tune with the space file's ray options
    tpe-median-warm, tpe-percentile-warm  (optional) tpe-pruned and tpe-percentile that prune
                nothing before a fifth of the trial's steps (the pruners' n_warmup_steps)

Every trial evaluates every --eval-steps steps (the same for all contenders, so they optimize
the same objective: a trial's best val_loss over its evaluations); samples are off and an
evaluation reads --eval-batches batches. Per seed and contender, from trials/<n>/trial.json in
trial order:

    best after k    the best val_loss of the complete trials among the first k finished
                    (complete or pruned) trials: k = 8, 16, 32 all come from one run
    steps to reach  training steps of every trial up to and including the first complete one
                    at or below random search's best after --trials trials (same seed)

Tables show the median over seeds. Goal (issue 3): pruned TPE reaches random search's best
with at most a third of random search's total steps.

    .venv/bin/python bench/search_quality.py        # 96 trials: ~40 min on 2 loaded CPU cores
    .venv/bin/python bench/search_quality.py --seeds 3 --drivers random,tpe,bo,tpe-pruned
    .venv/bin/python bench/search_quality.py --trials 4 --checkpoints 2,4 --max-steps 10  # smoke
    .venv/bin/python bench/search_quality.py --tables-from a.json,b.json   # merge --json files
    .venv/bin/python bench/search_quality.py --seeds 3 --runs R --json q.json --resume
    .venv/bin/python bench/search_quality.py --first-seed 3 --seeds 5   # seeds 3 and 4 only

--json is rewritten after every study, so a run cut short keeps its finished studies; --resume
runs only the studies missing from it (a study that was cut short starts again from scratch).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SPACE = "experiments/spaces/lr_wd.yaml"
EXPERIMENT = "experiments/lm_tiny.yaml"
# contender -> (driver, driver options replacing the space file's)
CONTENDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "tpe": ("optuna", {"sampler": "tpe", "pruner": "none"}),
    "bo": ("bo", {}),
    "tpe-pruned": ("optuna", {"sampler": "tpe", "pruner": "median"}),
    # the space file's TPE with hpo's default pruner (auto), what lr_wd.yaml runs since issue 19
    "tpe-auto": ("optuna", {"sampler": "tpe", "pruner": "auto"}),
    # the same TPE with pruners that keep fewer trials going
    "tpe-percentile": ("optuna", {"sampler": "tpe", "pruner": "percentile", "percentile": 25.0}),
    "tpe-sha": ("optuna", {"sampler": "tpe", "pruner": "successive_halving"}),
    # optuna's own benchmarks found TPE best with hyperband
    "tpe-hyperband": ("optuna", {"sampler": "tpe", "pruner": "hyperband"}),
    # a Gaussian-process sampler with the same pruner: optuna's advice for few continuous params
    "gp-pruned": ("optuna", {"sampler": "gp", "pruner": "median"}),
    "ray": ("ray", {}),
    # the same two pruners, pruning nothing before a fifth of the trial's steps
    # (warmup_fraction: not a driver option; run_study turns it into n_warmup_steps)
    "tpe-median-warm": ("optuna", {"sampler": "tpe", "pruner": "median", "warmup_fraction": 0.2}),
    "tpe-percentile-warm": (
        "optuna",
        {"sampler": "tpe", "pruner": "percentile", "percentile": 25.0, "warmup_fraction": 0.2},
    ),
}


def run_study(contender: str, seed: int, args: argparse.Namespace, runs: Path) -> dict[str, Any]:
    """One study; returns its trials (number, state, value, steps) in trial order."""
    from hpo.drivers import get_driver
    from hpo.drivers.base import StudySpec
    from hpo.objective import RunnerObjective
    from hpo.space import load_space
    from runner.config import check_key

    driver, options = CONTENDERS[contender][0], dict(CONTENDERS[contender][1])
    if "warmup_fraction" in options:  # the pruner's warm-up scales with the trial's length
        options["n_warmup_steps"] = round(options.pop("warmup_fraction") * args.max_steps)
    space = load_space(SPACE, driver=driver, config_key_check=check_key)
    space = space.with_budget(trials=args.trials, timeout=None, max_steps=args.max_steps)
    space = space.with_seed(seed)
    space = dataclasses.replace(space, driver_options={**space.driver_options, **options})
    overrides = [
        f"eval.eval_steps={args.eval_steps}",
        f"eval.max_eval_batches={args.eval_batches}",
        "eval.sample_tokens=0",
    ]
    objective = RunnerObjective(
        space.experiment or EXPERIMENT,
        metric=space.objective.metric,
        greater_is_better=False,
        max_steps=args.max_steps,
        overrides=overrides,
    )
    study = StudySpec.for_space(space, name=f"{contender}-seed{seed}", runs=runs, quiet=True)
    started = time.perf_counter()
    result = get_driver(driver).run(space, study, objective, None)
    trials = [
        {
            "number": t.number,
            "state": t.state,
            "value": t.value,
            "steps": t.steps,
            "params": t.params,
        }
        for t in result.trials
    ]
    return {
        "contender": contender,
        "seed": seed,
        "trials": trials,
        "wall_seconds": time.perf_counter() - started,
        "total_steps": json.loads((study.dir / "summary.json").read_text())["total_steps"],
    }


def best_after(trials: list[dict[str, Any]], k: int) -> float | None:
    """Best value of the complete trials among the first k finished ones (None: none complete)."""
    best, finished = None, 0
    for trial in trials:
        if finished == k:
            break
        if trial["state"] not in ("complete", "pruned"):
            continue
        finished += 1
        if trial["state"] == "complete" and (best is None or trial["value"] < best):
            best = trial["value"]
    return best if finished >= k else None


def steps_to_reach(trials: list[dict[str, Any]], target: float) -> int | None:
    """Training steps of all trials up to the first complete one at or below target."""
    spent = 0
    for trial in trials:
        spent += trial["steps"]
        if trial["state"] == "complete" and trial["value"] <= target:
            return spent
    return None


def median_or_none(values: list[float | None]) -> float | None:
    """Median where a missing value (never reached) counts as worse than any other."""
    if not values:
        return None
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    if len(ordered) % 2:
        return ordered[len(ordered) // 2]
    low, high = ordered[len(ordered) // 2 - 1], ordered[len(ordered) // 2]
    return None if low is None or high is None else (low + high) / 2


def print_tables(studies: list[dict[str, Any]], checkpoints: list[int], trials: int) -> None:
    contenders = list(dict.fromkeys(s["contender"] for s in studies))
    width = max([12] + [len(c) + 2 for c in contenders])  # the first column fits every name
    seeds = sorted({s["seed"] for s in studies})
    by = {(s["contender"], s["seed"]): s for s in studies}
    print(f"\nbest val_loss after k finished trials, median over seeds {seeds}")
    header = f"{'contender':<{width}}" + "".join(f"{f'k={k}':>10}" for k in checkpoints)
    header += f"{'vs random':>11}{'pruned':>8}{'failed':>8}{'steps':>8}{'wall s':>8}"
    print(header)
    print("-" * len(header))
    random_last = median_or_none(
        [best_after(by["random", s]["trials"], trials) for s in seeds if ("random", s) in by]
    )
    for contender in contenders:
        runs = [by[contender, s] for s in seeds if (contender, s) in by]
        medians = [median_or_none([best_after(r["trials"], k) for r in runs]) for k in checkpoints]
        cells = "".join(f"{m:>10.4f}" if m is not None else f"{'-':>10}" for m in medians)
        last = medians[-1]
        versus = f"{last - random_last:+.4f}" if last is not None and random_last else "-"
        pruned = statistics.median(sum(t["state"] == "pruned" for t in r["trials"]) for r in runs)
        failed = statistics.median(sum(t["state"] == "failed" for t in r["trials"]) for r in runs)
        steps = statistics.median(r["total_steps"] for r in runs)
        wall = statistics.median(r["wall_seconds"] for r in runs)
        print(
            f"{contender:<{width}}{cells}{versus:>11}{pruned:>8g}{failed:>8g}{steps:>8g}{wall:>8.0f}"
        )

    print(f"\nbest val_loss after {trials} trials, per seed")
    header = f"{'contender':<{width}}" + "".join(f"{f'seed {s}':>10}" for s in seeds)
    print(header + f"{'median':>10}")
    print("-" * (len(header) + 10))
    for contender in contenders:
        bests = [
            best_after(by[contender, s]["trials"], trials) if (contender, s) in by else None
            for s in seeds
        ]
        cells = "".join(f"{b:>10.4f}" if b is not None else f"{'-':>10}" for b in bests)
        ran = [b for b, s in zip(bests, seeds, strict=True) if (contender, s) in by]
        median = median_or_none(ran)
        print(f"{contender:<{width}}{cells}" + (f"{median:>10.4f}" if median is not None else ""))

    if "random" not in contenders:
        return
    print(f"\ntraining steps to reach random search's best after {trials} trials (same seed)")
    header = f"{'contender':<{width}}" + "".join(f"{f'seed {s}':>10}" for s in seeds)
    header += f"{'median':>10}{'x random':>10}"
    print(header)
    print("-" * len(header))
    random_total = {s: by["random", s]["total_steps"] for s in seeds if ("random", s) in by}
    print(
        f"{'random: all':<{width}}"
        + "".join(f"{random_total.get(s, '-'):>10}" for s in seeds)
        + f"{statistics.median(random_total.values()):>10g}{1:>10.2f}"
    )
    ratios_of: dict[str, float | None] = {}
    for contender in contenders:
        cells, spent, ratios = "", [], []
        for seed in seeds:
            if (contender, seed) not in by or ("random", seed) not in by:
                cells += f"{'-':>10}"
                continue
            target = best_after(by["random", seed]["trials"], trials)
            steps = (
                None if target is None else steps_to_reach(by[contender, seed]["trials"], target)
            )
            spent.append(steps)
            ratios.append(None if steps is None else steps / random_total[seed])
            cells += f"{steps:>10}" if steps is not None else f"{'never':>10}"
        median = median_or_none(spent)
        ratios_of[contender] = median_or_none(ratios)
        ratio = ratios_of[contender]
        print(
            f"{contender:<{width}}{cells}"
            + (f"{median:>10g}" if median is not None else f"{'never':>10}")
            + (f"{ratio:>10.2f}" if ratio is not None else f"{'-':>10}")
        )
    if "tpe-pruned" in ratios_of:
        ratio = ratios_of["tpe-pruned"]
        verdict = "met" if ratio is not None and ratio <= 1 / 3 else "MISSED"
        shown = f"{ratio:.2f}x" if ratio is not None else "never reached"
        print(
            f"goal: pruned TPE reaches random's best with <= 1/3 of its steps: {shown}, {verdict}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--drivers", default="random,tpe-pruned,bo", help=f"contenders, from {','.join(CONTENDERS)}"
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="seeds --first-seed..N-1 of every contender"
    )
    parser.add_argument(
        "--first-seed", type=int, default=0, help="start at this seed (split seeds over processes)"
    )
    parser.add_argument("--trials", type=int, default=32, help="finished trials per study")
    parser.add_argument("--checkpoints", default="8,16,32", help="k of 'best after k trials'")
    parser.add_argument("--max-steps", type=int, default=30, help="training steps per trial")
    parser.add_argument("--eval-steps", type=int, default=10, help="evaluate every N steps")
    parser.add_argument("--eval-batches", type=int, default=8, help="batches per evaluation")
    parser.add_argument("--runs", help="keep the studies here (default: a temporary folder)")
    parser.add_argument(
        "--cache-dir",
        help="tokenized-data cache (default: $HPO_CACHE_DIR, "
        "else a temporary one shared by every trial)",
    )
    parser.add_argument("--json", help="write every study's trials here, after each study")
    parser.add_argument(
        "--resume", action="store_true", help="keep the studies in --json, run the missing ones"
    )
    parser.add_argument(
        "--tables-from", help="only print the tables of --json files (comma-separated)"
    )
    args = parser.parse_args()
    checkpoints = [int(k) for k in args.checkpoints.split(",")]
    if not 0 <= args.first_seed < args.seeds:
        parser.error(f"--first-seed {args.first_seed} runs no seed below --seeds {args.seeds}")
    if args.resume and not (args.json and args.runs):
        parser.error("--resume needs --json and --runs (where the earlier run kept its studies)")

    if args.tables_from:  # several files: studies run in separate processes, merged
        studies = [s for f in args.tables_from.split(",") for s in json.loads(Path(f).read_text())]
        print_tables(studies, checkpoints, args.trials)
        return
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="hpo-bench-quality-") as tmp:
        if args.cache_dir:
            os.environ["HPO_CACHE_DIR"] = args.cache_dir
        os.environ.setdefault("HPO_CACHE_DIR", str(Path(tmp) / "cache"))
        runs = Path(args.runs) if args.runs else Path(tmp) / "runs"
        contenders = args.drivers.split(",")
        print(
            f"{EXPERIMENT} x {SPACE}: {args.trials} trials of {args.max_steps} steps, eval "
            f"every {args.eval_steps} steps ({args.eval_batches} batches), seeds "
            f"{args.first_seed}..{args.seeds - 1}, contenders {', '.join(contenders)}",
            file=sys.stderr,
        )
        studies = []
        if args.resume and Path(args.json).is_file():
            studies = json.loads(Path(args.json).read_text())
        done = {(s["contender"], s["seed"]) for s in studies}
        # seed outermost: a run cut short has whole seeds
        for seed in range(args.first_seed, args.seeds):
            for contender in contenders:
                if (contender, seed) in done:
                    continue
                if args.resume:  # a study cut short lost its sampler's state: start it over
                    shutil.rmtree(runs / f"{contender}-seed{seed}", ignore_errors=True)
                study = run_study(contender, seed, args, runs)
                studies.append(study)
                best = best_after(study["trials"], args.trials)
                print(
                    f"{contender} seed {seed}: best {best}, {study['total_steps']} steps, "
                    f"{study['wall_seconds']:.0f} s",
                    file=sys.stderr,
                    flush=True,
                )
                if args.json:
                    Path(args.json).write_text(json.dumps(studies, indent=1) + "\n")
        print_tables(studies, checkpoints, args.trials)


if __name__ == "__main__":
    main()
