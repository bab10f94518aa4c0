"""Search quality on learning curves: YAHPO Gym's LCBench surrogate, 52 epochs per trial.

Question (issue 19): which pruner, and which budget, find a good configuration for the fewest
epochs when learning curves cross? Each study searches the 7 hyperparameters of LCBench's MLP
on one OpenML task through hpo's driver code, the same that `hpo search` runs (load the space,
get_driver(name).run), in this process, with the objective of bench/lcbench_surrogate.py
(`--objective` contract: one report per epoch; benchmark-only, needs ../shared/data/lcbench).

Every contender gets the same epoch budget: --trials full trials' worth (default 30 x 52 =
1560 epochs), as budget.max_steps_total, so a pruned study runs more trials in it:

    random          random search (the baseline: --trials full trials)
    tpe             multivariate TPE, no pruner
    tpe-median      TPE + the median pruner: hpo's default before issue 19
    tpe-percentile  TPE + the 25th-percentile pruner
    tpe-sha         TPE + successive halving (reduction factor 3)
    tpe-hyperband   TPE + hyperband (max resource 52, reduction factor 3)
    tpe-wilcoxon    TPE + Optuna's WilcoxonPruner (p 0.1) (not an hpo option: the bench hands it
                    to the driver; it tests a trial's per-epoch values against the best trial's)
    tpe-median-warm TPE + median pruner, no pruning before half the epochs (n_warmup_steps 26)
    default         the optuna driver with no options at all: what `hpo search` does now
    ray-asha        Ray Tune (hpo's ray driver): random searcher + ASHA (grace 1, factor 3);
                    Ray cannot stop on a step budget: --ray-trials trials instead

Per task and seed, from the trials in the order they ran:

    target          random search's best (last-epoch val_accuracy of a complete trial) after
                    --trials trials, same task and seed
    epochs to match epochs of every trial up to the first complete one at or above the target
    best at B       best complete trial among those that ended within B epochs (B = 0.3, 0.5
                    and 1 x the budget)

Tables: per task the median over seeds (a seed that never matches counts as never, the
worst), then the median over tasks. Goal (issue 19): the default matches random's best with at
most 0.3x its epochs on the median task, and is worse than unpruned TPE at equal epochs on at
most 2 tasks in 10.

    .venv/bin/python bench/lcbench.py --json /tmp/lc.json                      # 10 tasks x 10 seeds
    .venv/bin/python bench/lcbench.py --contenders random,tpe,default --seeds 2 --tasks 3945  # smoke
    .venv/bin/python bench/lcbench.py --tables-from /tmp/a.json,/tmp/b.json    # merge runs
    .venv/bin/python bench/lcbench.py --tables-from /tmp/a.json --tables-seeds 0-9  # seeds 0-9
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # lcbench_surrogate, beside this file
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # hpo, from this checkout

import lcbench_surrogate as surrogate  # noqa: E402

# fixed: the first 10 tasks of config_space.json's list (OpenML task ids)
TASKS = (
    "3945",
    "7593",
    "34539",
    "126025",
    "126026",
    "126029",
    "146212",
    "167104",
    "167149",
    "167152",
)
# contender -> (driver, driver options replacing the defaults)
CONTENDERS: dict[str, tuple[str, dict[str, Any]]] = {
    "random": ("random", {}),
    "tpe": ("optuna", {"sampler": "tpe", "pruner": "none"}),
    "tpe-median": ("optuna", {"sampler": "tpe", "pruner": "median"}),
    "tpe-percentile": ("optuna", {"sampler": "tpe", "pruner": "percentile"}),
    "tpe-sha": ("optuna", {"sampler": "tpe", "pruner": "successive_halving"}),
    "tpe-hyperband": ("optuna", {"sampler": "tpe", "pruner": "hyperband"}),
    "tpe-wilcoxon": ("optuna", {"sampler": "tpe", "pruner": "median", "wilcoxon": True}),
    "tpe-median-warm": (
        "optuna",
        {"sampler": "tpe", "pruner": "median", "n_warmup_steps": surrogate.EPOCHS // 2},
    ),
    "default": ("optuna", {}),
    # the default with half of TPE's random start-up trials: pruned trials are cheap, so the
    # model may start sooner (issue 19, third round)
    "default-s5": ("optuna", {"n_startup_trials": 5}),
    "default-s5-draw2": ("optuna", {"n_startup_trials": 5}),  # other names, other brackets
    "default-s5-draw3": ("optuna", {"n_startup_trials": 5}),
    "tpe-s5": ("optuna", {"sampler": "tpe", "pruner": "none", "n_startup_trials": 5}),
    "ray-asha": ("ray", {"searcher": "random", "scheduler": "asha"}),
}
FRACTIONS = (0.3, 0.5, 1.0)
# Candidate pruners by name, built by the bench itself (no hpo option needed): tpe-hb-m4-r3 is
# TPE + HyperbandPruner(min_resource 4, reduction_factor 3, max_resource 52), tpe-sha-m4-r3
# SuccessiveHalvingPruner(min_resource 4, reduction_factor 3), tpe-med-w13-s5 MedianPruner
# (warm-up 13 epochs, 5 startup trials), tpe-pct25-w8-s5 PercentilePruner(25, warm-up 8, 5).
CANDIDATE = re.compile(r"tpe-(hb|sha)-m(\d+)-r(\d+)|tpe-(med|pct\d+)-w(\d+)-s(\d+)")


def contender_spec(name: str) -> tuple[str, dict[str, Any]] | None:
    """CONTENDERS[name], or a candidate pruner's spec parsed from its name (None: unknown)."""
    if name in CONTENDERS:
        return CONTENDERS[name]
    match = CANDIDATE.fullmatch(name)
    if match is None:
        return None
    kind, low, factor, rule, warmup, startup = match.groups()
    if kind == "hb":
        pruner = ("HyperbandPruner", {"min_resource": int(low), "max_resource": surrogate.EPOCHS})
    elif kind == "sha":
        pruner = ("SuccessiveHalvingPruner", {"min_resource": int(low)})
    elif rule == "med":
        pruner = ("MedianPruner", {"n_warmup_steps": int(warmup), "n_startup_trials": int(startup)})
    else:
        pruner = (
            "PercentilePruner",
            {
                "percentile": float(rule[3:]),
                "n_warmup_steps": int(warmup),
                "n_startup_trials": int(startup),
            },
        )
    if kind:
        pruner[1]["reduction_factor"] = int(factor)
    return ("optuna", {"sampler": "tpe", "pruner_class": pruner})


def run_study(contender: str, task: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """One study; its trials (state, steps, value) in the order they ran."""
    import dataclasses

    import hpo.drivers.optuna_driver.suggester as suggester
    from hpo.drivers import get_driver
    from hpo.drivers.base import StudySpec
    from hpo.space import space_from_dict

    driver, options = contender_spec(contender)
    options = dict(options)
    wilcoxon = options.pop("wilcoxon", False)
    pruner_class = options.pop("pruner_class", None)
    budget_epochs = args.trials * surrogate.EPOCHS
    ray = driver == "ray"
    raw = surrogate.space_dict(
        task, seed, args.ray_trials if ray else None, None if ray else budget_epochs
    )
    space = space_from_dict(raw, source=f"lcbench-{task}.yaml", driver=driver)
    space = dataclasses.replace(space, driver_options={**space.driver_options, **options})
    # tmpfs where there is one: trial.json is fsync'd, which a disk makes the slowest part here
    shm = Path("/dev/shm")
    runs = Path(tempfile.mkdtemp(prefix="lcbench-", dir=shm if shm.is_dir() else None))
    fields: dict[str, Any] = {"quiet": True}
    if driver == "optuna":
        fields["storage"] = "memory"
    study = StudySpec.for_space(space, name=f"{contender}-{task}-{seed}", runs=runs, **fields)
    make_pruner = suggester.make_pruner
    if wilcoxon:
        import optuna

        suggester.make_pruner = lambda space: optuna.pruners.WilcoxonPruner(p_threshold=0.1)
    if pruner_class:
        import optuna

        build, kwargs = getattr(optuna.pruners, pruner_class[0]), pruner_class[1]
        suggester.make_pruner = lambda space: build(**kwargs)
    started = time.perf_counter()
    try:
        result = get_driver(driver).run(space, study, surrogate.objective, None)
    finally:
        suggester.make_pruner = make_pruner
        shutil.rmtree(runs, ignore_errors=True)
    trials = sorted(result.trials, key=lambda t: (t.started, t.number))
    return {
        "contender": contender,
        "task": task,
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
        "trials": [
            [t.state[0], t.steps, None if t.value is None else round(t.value, 4)] for t in trials
        ],
    }


# ----------------------------------------------------------------------------- measures


def cumulative(trials: list) -> list[tuple[int, str, float | None]]:
    """(epochs spent when the trial ended, state initial, value) per trial, in order."""
    spent, out = 0, []
    for state, steps, value in trials:
        spent += steps
        out.append((spent, state, value))
    return out


def best_within(trials: list, epochs: float) -> float | None:
    values = [v for spent, s, v in cumulative(trials) if s == "c" and spent <= epochs]
    return max(values) if values else None


def epochs_to_reach(trials: list, target: float) -> float:
    for spent, state, value in cumulative(trials):
        if state == "c" and value is not None and value >= target:
            return spent
    return math.inf


def random_target(studies: dict, task: str, seed: int, trials: int) -> float | None:
    random = studies.get(("random", task, seed))
    if random is None:
        return None
    complete = [v for s, _, v in random["trials"][:trials] if s == "c" and v is not None]
    return max(complete) if complete else None


def fixed_count_prefixes(studies: dict, trials: int) -> dict:
    """Each pruned contender as if run with budget.trials = --trials instead of the step budget:
    the first --trials trials of its study (a seeded sequential study asks the same params
    whatever its budget, so the prefix is that study). "tpe-median (30 trials)" is hpo's
    default before issue 19 as a user ran it."""
    prefixes = {}
    for (contender, task, seed), study in studies.items():
        if contender.startswith("tpe-") and "(" not in contender:
            name = f"{contender} ({trials} trials)"
            prefixes[(name, task, seed)] = {**study, "trials": study["trials"][:trials]}
    return prefixes


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def summarize(studies: dict, trials: int) -> dict[str, Any]:
    """Per contender and task: median epochs to match random's best, median best at B."""
    budget = trials * surrogate.EPOCHS
    studies = {**studies, **fixed_count_prefixes(studies, trials)}
    contenders = [c for c in CONTENDERS if any(k[0] == c for k in studies)]
    contenders += sorted({k[0] for k in studies} - set(contenders))
    tasks = [t for t in TASKS if any(k[1] == t for k in studies)]
    tasks += sorted({k[1] for k in studies} - set(tasks))
    table: dict[str, Any] = {}
    for contender in contenders:
        per_task = {}
        for task in tasks:
            seeds = sorted(k[2] for k in studies if k[0] == contender and k[1] == task)
            reach, best, pruned, ran = [], {f: [] for f in FRACTIONS}, [], []
            for seed in seeds:
                target = random_target(studies, task, seed, trials)
                study = studies[(contender, task, seed)]["trials"]
                if target is not None:
                    reach.append(epochs_to_reach(study, target))
                for fraction in FRACTIONS:
                    value = best_within(study, fraction * budget)
                    best[fraction].append(-math.inf if value is None else value)
                pruned.append(sum(s == "p" for s, _, _ in study))
                ran.append(len(study))
            if not seeds:
                continue
            per_task[task] = {
                "seeds": len(seeds),
                "epochs_to_match": median(reach) if reach else None,
                "matched": sum(math.isfinite(r) for r in reach),
                "best": {str(f): median(best[f]) for f in FRACTIONS},
                "trials": median(ran),
                "pruned": median(pruned),
            }
        table[contender] = per_task
    return {"budget_epochs": budget, "trials": trials, "tasks": tasks, "table": table}


def ratio_text(epochs: float | None, budget: int) -> str:
    if epochs is None:
        return "-"
    return "never" if not math.isfinite(epochs) else f"{epochs / budget:.2f}"


def print_tables(summary: dict[str, Any]) -> None:
    budget, tasks, table = summary["budget_epochs"], summary["tasks"], summary["table"]
    print(
        f"\nEpochs to match random search's best after {summary['trials']} trials, as a fraction "
        f"of its {budget} epochs (median over seeds; never: a median seed did not match)\n"
    )
    print("| contender | " + " | ".join(tasks) + " | median task | tasks | seeds matched |")
    print("| --- |" + " ---: |" * (len(tasks) + 3))
    for contender, per_task in table.items():
        cells, ratios = [], []
        for task in tasks:
            row = per_task.get(task)
            epochs = None if row is None else row["epochs_to_match"]
            cells.append(ratio_text(epochs, budget))
            if epochs is not None:
                ratios.append(epochs)
        matched = sum(math.isfinite(r) for r in ratios)
        seeds = sum(r["seeds"] for r in per_task.values())
        seeds_matched = sum(r["matched"] for r in per_task.values())
        print(
            f"| {contender} | "
            + " | ".join(cells)
            + f" | {ratio_text(median(ratios) if ratios else None, budget)} | "
            f"{matched}/{len(ratios)} | {seeds_matched}/{seeds} |"
        )
    for fraction in FRACTIONS:
        print(
            f"\nBest val_accuracy (%) within {fraction:g} x {budget} epochs (median over seeds); "
            "vs tpe: tasks where it is above / below unpruned TPE\n"
        )
        print("| contender | " + " | ".join(tasks) + " | vs tpe |")
        print("| --- |" + " ---: |" * (len(tasks) + 1))
        tpe = table.get("tpe", {})
        for contender, per_task in table.items():
            cells, above, below = [], 0, 0
            for task in tasks:
                row = per_task.get(task)
                if row is None:
                    cells.append("-")
                    continue
                value = row["best"][str(fraction)]
                cells.append(f"{value:.2f}" if math.isfinite(value) else "none")
                if task in tpe and contender != "tpe":
                    other = tpe[task]["best"][str(fraction)]
                    above += value > other
                    below += value < other
            versus = "-" if contender == "tpe" or not tpe else f"{above} / {below}"
            print(f"| {contender} | " + " | ".join(cells) + f" | {versus} |")
    print("\nTrials run and pruned (median over seeds, then over tasks)\n")
    print("| contender | trials | pruned | seeds |")
    print("| --- | ---: | ---: | ---: |")
    for contender, per_task in table.items():
        rows = list(per_task.values())
        print(
            f"| {contender} | {median([r['trials'] for r in rows]):.0f} | "
            f"{median([r['pruned'] for r in rows]):.0f} | {min(r['seeds'] for r in rows)} |"
        )


def load_studies(paths: list[str]) -> dict:
    studies = {}
    for path in paths:
        for study in json.loads(Path(path).read_text())["studies"]:
            studies[(study["contender"], study["task"], study["seed"])] = study
    return studies


def write_json(path: str, studies: dict, trials: int) -> None:
    from runner.files import atomic_write_text

    summary = summarize(studies, trials)
    payload = {"summary": summary, "studies": list(studies.values())}
    atomic_write_text(Path(path), json.dumps(payload, default=str))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contenders", default=",".join(c for c in CONTENDERS if c != "ray-asha"))
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=30, help="random search's full trials")
    parser.add_argument("--ray-trials", type=int, default=200, help="ray-asha's trial count")
    parser.add_argument("--json", help="write studies and tables here (after every task)")
    parser.add_argument("--resume", action="store_true", help="skip studies already in --json")
    parser.add_argument("--tables-from", help="comma-separated --json files: tables only")
    parser.add_argument(
        "--tables-contenders", help="with --tables-from: only these rows, in this order"
    )
    parser.add_argument(
        "--tables-seeds", help="with --tables-from: only these seeds, e.g. 0-9 (before/after)"
    )
    args = parser.parse_args()

    if args.tables_from:
        studies = load_studies(args.tables_from.split(","))
        if args.tables_seeds:
            low, high = (int(end) for end in args.tables_seeds.split("-"))
            studies = {key: s for key, s in studies.items() if low <= key[2] <= high}
        summary = summarize(studies, args.trials)
        if args.tables_contenders:  # these rows only; random's studies still set the target
            rows = args.tables_contenders.split(",")
            summary["table"] = {c: summary["table"][c] for c in rows if c in summary["table"]}
        print_tables(summary)
        return 0
    try:
        surrogate.check_data()
    except surrogate.SurrogateMissing as err:
        print(f"lcbench: error: {err}", file=sys.stderr)
        return 2
    contenders = args.contenders.split(",")
    unknown = [c for c in contenders if contender_spec(c) is None]
    if unknown:
        print(
            f"lcbench: error: unknown contender {unknown[0]}; choose from {', '.join(CONTENDERS)}"
        )
        return 2
    if "random" not in contenders and not args.resume:
        print("lcbench: note: without random in this run, tables need --tables-from with it")
    if "ray-asha" in contenders:  # Ray's workers import the objective's module by name
        # and run in Ray's own folder: a relative HPO_LCBENCH_DIR would fail every trial there
        os.environ["HPO_LCBENCH_DIR"] = str(surrogate.data_dir().resolve())
        here = str(Path(__file__).resolve().parent)
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [here, str(Path(here).parent), os.environ.get("PYTHONPATH", "")]
        )
    logging.getLogger("hpo").setLevel(logging.ERROR)
    warnings.simplefilter("ignore")
    studies = (
        load_studies([args.json]) if args.resume and args.json and Path(args.json).exists() else {}
    )
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    started = time.perf_counter()
    for task in args.tasks.split(","):
        for contender in contenders:
            for seed in seeds:
                if (contender, task, seed) in studies:
                    continue
                studies[(contender, task, seed)] = run_study(contender, task, seed, args)
            spent = sum(studies[(contender, task, s)]["seconds"] for s in seeds)
            print(
                f"task {task} {contender}: {len(seeds)} studies, {spent:.0f} s "
                f"({time.perf_counter() - started:.0f} s so far)",
                flush=True,
            )
        if args.json:
            write_json(args.json, studies, args.trials)
    print_tables(summarize(studies, args.trials))
    return 0


if __name__ == "__main__":
    sys.exit(main())
