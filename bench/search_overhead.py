"""Search overhead per trial, excluding training: what a driver costs around a trial that costs nothing.

Two measurements, in one process, on the space of the README's search
(experiments/spaces/lr_wd.yaml: learning rate and weight decay, both log-scale; TPE with 4
startup trials):

    per trial   a no-op objective (it returns a number computed from its params) run N times
                in this process by each driver; ms/trial = the driver's whole run / N, so it
                counts the sampler, the storage, trials/<n>/trial.json (twice per trial),
                the budget checks and the study's final outputs; median of --repeats runs,
                the contenders' order rotated. The baseline, measured in the same run, is
                Optuna alone (optuna-bare): study.ask() + suggest_float x2 + study.tell()
                with the sampler and pruner hpo builds, in memory, no hpo around it;
                optuna-bare-ungrouped is the same with TPESampler(group=False).
    parallel    trials that sleep --sleep seconds, --parallel K at once in worker processes
                (the spawn start of each worker included); the ideal wall-clock is
                trials * sleep / K, and the ratio is the driver's whole run / ideal. Each
                trial writes when its objective started and ended, which splits the excess
                into the workers' start, idle time between trials, and the end of the run.

Goals (issue 3): under 20 ms per trial for optuna with in-memory storage; parallel wall-clock
at most 1.15x the ideal. --profile prints where the time of the in-memory optuna run goes.

    .venv/bin/python bench/search_overhead.py --profile optuna-memory   # ~8 min on 2 CPU cores
    .venv/bin/python bench/search_overhead.py --trials 100 --parallel-trials 4 --sleep 0.2 --profile optuna-memory
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import json
import math
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

SPACE = "experiments/spaces/lr_wd.yaml"
CONTENDERS = ("optuna-bare", "optuna-memory", "optuna-journal", "random", "optuna-bare-ungrouped")


def noop(params, reporter):
    """No training: a number from the params, so a model-based sampler has something to fit."""
    return (math.log10(params["train.learning_rate"]) + 3) ** 2 + math.log10(
        params["train.weight_decay"]
    ) ** 2 / 100


@dataclasses.dataclass(frozen=True)
class Sleep:
    """A trial that takes `seconds` and does nothing else; module-level so workers can unpickle it."""

    seconds: float

    def __call__(self, params, reporter):
        entered = time.time()  # when the worker starts the objective: spawn and relay show
        time.sleep(self.seconds)
        (reporter.dir / "timing.json").write_text(json.dumps([entered, time.time()]))
        return noop(params, reporter)


def load(driver: str, trials: int, seed: int):
    from hpo.space import load_space

    space = load_space(SPACE, driver=driver, config_key_check=None)
    return space.with_budget(trials=trials, timeout=None, max_steps=None).with_seed(seed)


def run_hpo(
    driver: str,
    storage: str | None,
    trials: int,
    seed: int,
    runs: Path,
    objective: Callable = noop,
    parallel: int = 1,
):
    """One study through the public API, as `hpo search` runs it: (seconds, result, unix start)."""
    from hpo.drivers import get_driver
    from hpo.drivers.base import StudySpec

    space = load(driver, trials, seed)
    name = f"{driver}-{storage or 'journal'}-{trials}-p{parallel}"
    study = StudySpec.for_space(
        space, name=name, runs=runs, storage=storage, quiet=True, parallel=parallel
    )
    started = time.time()
    start = time.perf_counter()
    result = get_driver(driver).run(space, study, objective, None)
    seconds = time.perf_counter() - start
    complete = result.count("complete")
    if complete != trials:
        raise RuntimeError(
            f"{name}: {complete} of {trials} trials complete ({result.first_failure})"
        )
    return seconds, result, started


def run_optuna_bare(trials: int, seed: int, grouped: bool = True) -> float:
    """The baseline: the same sampler and pruner driven by a bare ask/tell loop, in memory.

    grouped=False: the same TPE without group=True (which hpo sets for conditional params).
    """
    import optuna

    from hpo.suggesters.optuna_pruners import make_pruner
    from hpo.suggesters.optuna_samplers import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load("optuna", trials, seed)
    sampler = make_sampler(space, 1)
    if not grouped:
        options = space.driver_options
        sampler = optuna.samplers.TPESampler(
            seed=seed, n_startup_trials=options["n_startup_trials"], multivariate=True
        )
    ranges = {
        name: space.param(name).distribution
        for name in ("train.learning_rate", "train.weight_decay")
    }
    start = time.perf_counter()
    study = optuna.create_study(sampler=sampler, pruner=make_pruner(space))
    for _ in range(trials):
        trial = study.ask()
        params = {
            name: trial.suggest_float(name, r.low, r.high, log=True) for name, r in ranges.items()
        }
        study.tell(trial, noop(params, None))
    return time.perf_counter() - start


def measure(contender: str, trials: int, seed: int, runs: Path) -> float:
    if contender == "optuna-bare":
        return run_optuna_bare(trials, seed)
    if contender == "optuna-bare-ungrouped":
        return run_optuna_bare(trials, seed, grouped=False)
    if contender == "optuna-memory":
        return run_hpo("optuna", "memory", trials, seed, runs)[0]
    if contender == "optuna-journal":
        return run_hpo("optuna", None, trials, seed, runs)[0]
    return run_hpo("random", None, trials, seed, runs)[0]


def per_trial_table(
    sizes: list[int], contenders: list[str], seed: int, runs: Path, repeats: int
) -> None:
    print(f"\nper trial, no-op objective, sequential, {SPACE}")
    print(f"ms/trial = whole run / trials, median of {repeats} runs (contenders alternate)")
    header = f"{'contender':<22}" + "".join(
        f"{f'{n} trials':>14}{'x bare':>8}{'- bare':>10}" for n in sizes
    )
    print(header)
    print("-" * len(header))
    times: dict[tuple[str, int], list[float]] = {(c, n): [] for c in contenders for n in sizes}
    for n in sizes:
        for repeat in range(repeats):
            order = contenders[repeat % len(contenders) :] + contenders[: repeat % len(contenders)]
            for contender in order:  # rotated, so that a burst of load hits each alike
                seconds = measure(contender, n, seed, runs / f"r{repeat}")
                times[contender, n].append(seconds / n * 1000)
    results = {key: statistics.median(values) for key, values in times.items()}
    for contender in contenders:
        cells = ""
        for n in sizes:
            ms = results[contender, n]
            bare = results.get(("optuna-bare", n))
            same_sampler = bare and contender != "random"
            ratio = f"{ms / bare:.2f}" if same_sampler else "-"
            extra = f"{ms - bare:+.2f} ms" if same_sampler else "-"
            cells += f"{ms:>11.2f} ms{ratio:>8}{extra:>10}"
        print(f"{contender:<22}{cells}")
    for n in sizes:
        if ("optuna-memory", n) in results:
            ms = results["optuna-memory", n]
            verdict = "met" if ms < 20 else "MISSED"
            print(f"goal: optuna in memory < 20 ms/trial at {n} trials: {ms:.2f} ms, {verdict}")


def parallel_table(
    sizes: list[int], parallel: int, sleep: float, drivers: list[str], seed: int, runs: Path
) -> None:
    print(
        f"\nparallel: trials of {sleep:g} s, {parallel} worker processes, journal storage; "
        f"ideal = trials * {sleep:g} s / {parallel}"
    )
    print(
        "first in: run start -> first objective call (worker spawn); idle: worker-seconds "
        "outside an\nobjective between the first call and the last return; last out: last "
        "return -> run returns"
    )
    header = (
        f"{'driver':<10}{'trials':>7}{'wall s':>9}{'ideal s':>9}{'x ideal':>9}"
        f"{'first in s':>12}{'idle s':>9}{'last out s':>12}"
    )
    print(header)
    print("-" * len(header))
    verdicts = []
    for trials in sizes:
        ideal = trials * sleep / parallel
        for driver in drivers:
            seconds, result, started = run_hpo(
                driver, None, trials, seed, runs, Sleep(sleep), parallel
            )
            study_dir = runs / f"{driver}-journal-{trials}-p{parallel}"
            spans = sorted(
                json.loads((p / "timing.json").read_text())
                for p in (study_dir / "trials").glob("*")
            )
            busy_from, busy_to = spans[0][0], max(end for _, end in spans)
            idle = parallel * (busy_to - busy_from) - sum(end - start for start, end in spans)
            ratio = seconds / ideal
            print(
                f"{driver:<10}{trials:>7}{seconds:>9.2f}{ideal:>9.2f}{ratio:>9.3f}"
                f"{busy_from - started:>12.3f}{idle:>9.3f}{started + seconds - busy_to:>12.3f}"
            )
            verdict = "met" if ratio <= 1.15 else "MISSED"
            verdicts.append(
                f"goal: {driver}, {trials} trials, wall-clock <= 1.15x ideal: "
                f"{ratio:.3f}x, {verdict}"
            )
    print("\n".join(verdicts))


def profile(contender: str, trials: int, seed: int, runs: Path, top: int) -> None:
    print(f"\nprofile: {contender}, {trials} no-op trials (by own time, then cumulative)")
    profiler = cProfile.Profile()
    profiler.enable()
    measure(contender, trials, seed, runs / f"profile-{contender}")
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print("\n".join(lines[start - 2 : start + top + 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", default="100,1000", help="sizes of the per-trial runs")
    parser.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help=f"per-trial contenders, from {','.join(CONTENDERS)}",
    )
    parser.add_argument("--parallel", type=int, default=2, help="worker processes")
    parser.add_argument(
        "--parallel-trials", default="8,32", help="sizes of the parallel runs (empty: none)"
    )
    parser.add_argument("--sleep", type=float, default=1.0, help="seconds per parallel trial")
    parser.add_argument(
        "--parallel-drivers",
        default="optuna,random",
        help="drivers of the parallel run (journal storage, as hpo search)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per contender and size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--profile",
        default="",
        help="contenders to profile at the largest size, e.g. optuna-memory",
    )
    parser.add_argument("--top", type=int, default=15, help="functions the profile shows")
    args = parser.parse_args()

    sizes = [int(n) for n in args.trials.split(",")]
    import optuna  # noqa: F401 (imported here, not inside the first timed run)

    with tempfile.TemporaryDirectory(prefix="hpo-bench-overhead-") as tmp:
        runs = Path(tmp)
        contenders = [c for c in args.contenders.split(",") if c]
        if contenders:
            per_trial_table(sizes, contenders, args.seed, runs, args.repeats)
        parallel_sizes = [int(n) for n in args.parallel_trials.split(",") if n]
        if parallel_sizes:
            parallel_table(
                parallel_sizes,
                args.parallel,
                args.sleep,
                args.parallel_drivers.split(","),
                args.seed,
                runs,
            )
        for contender in filter(None, args.profile.split(",")):
            profile(contender, max(sizes), args.seed, runs, args.top)


if __name__ == "__main__":
    main()
