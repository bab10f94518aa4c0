"""`hpo worker`: join a study on a shared database and run its trials until its budget is spent.

    # machine A: creates the study (or loads it) and runs trials itself
    hpo search --space experiments/spaces/lr_wd.yaml --storage postgresql://hpo@db/hpo --study lr
    # machines B, C, ...: same project checkout, run from its root
    hpo worker --storage postgresql://hpo@db/hpo --study lr

`hpo search --storage URL` stores in the Optuna study (user attribute "hpo") what a worker
needs: the resolved space (params, objective, budget, driver options), where the space came
from, and the objective: the experiment config and its -o overrides, or the module:function of
--objective. Paths are relative to the project root, so a worker runs from its own checkout's
root. The budget is the study's, counted over every worker (hpo.drivers.optuna_driver);
budget.timeout, or --timeout, applies to each worker on its own.

Each worker writes its trials under its own machine's RUNS/STUDY/trials/<n>/, n being the
study's trial number (unique across workers); its summary.json and `hpo status` cover the
trials it ran. Two processes on one machine need two --runs folders. Optuna's storage holds the
whole study: optuna.load_study(study_name=NAME, storage=URL). With MLflow, each worker logs its
own parent run, named after the study, and a child run per trial it ran; all carry the tag
hpo.study=NAME.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hpo.drivers.base import ObjectiveFunction
from hpo.drivers.optuna_driver.recipe import RECIPE_VERSION
from hpo.drivers.optuna_driver.recipe import study_recipe as study_recipe  # its reader's name
from hpo.space import SearchSpace
from runner.errors import UserInputError


def space_from_recipe(recipe: dict[str, Any]) -> SearchSpace:
    """The study's SearchSpace, validated again on this machine."""
    from hpo.space import space_from_dict
    from runner.config import check_key

    if recipe.get("version") != RECIPE_VERSION:
        raise UserInputError(
            f"the study was started by another version of hpo (recipe version "
            f"{recipe.get('version')}, this hpo reads {RECIPE_VERSION})"
        )
    raw = dict(recipe["space"])
    options = {k: v for k, v in raw.pop("driver").items() if k != "name"}
    runner = "runner" in recipe["objective"]
    return space_from_dict(
        {**raw, "driver": options},
        source=recipe["source"],
        driver="optuna",
        config_key_check=check_key if runner else None,
    )


def objective_from_recipe(
    recipe: dict[str, Any], study: str, function: str | None = None
) -> ObjectiveFunction:
    """The study's objective (or `function`, module:function, when given)."""
    from hpo.objective import RunnerObjective, load_function

    spec = recipe["objective"]
    if "command" in spec and not function:  # command trials: the command line is in the space
        from hpo.validation import check_command

        return check_command(space_from_recipe(recipe))
    if function or "function" in spec:
        return load_function(function or spec["function"])
    if "runner" in spec:
        runner = spec["runner"]
        return RunnerObjective(
            runner["experiment"],
            metric=runner["metric"],
            greater_is_better=runner["greater_is_better"],
            max_steps=runner["max_steps"],
            overrides=runner["overrides"],
        )
    raise UserInputError(
        f"study '{study}': its objective has no importable name (a lambda or a "
        "callable object); pass --objective module:function"
    )


# ----------------------------------------------------------------------------- the command


def add_worker_command(commands: Any) -> None:
    """Add `hpo worker` to the CLI's subparsers."""
    worker = commands.add_parser(
        "worker", help="join a study on a database and run its trials until its budget is spent"
    )
    worker.add_argument(
        "--storage",
        required=True,
        help="the study's database URL, as given to hpo search --storage",
    )
    worker.add_argument("--study", required=True, help="the study's name, as given to hpo search")
    worker.add_argument(
        "--runs",
        default="runs",
        help="this worker's folder for the study's trials (default: %(default)s)",
    )
    worker.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="trials at once in this worker, each in its own process",
    )
    worker.add_argument(
        "--timeout", type=float, help="seconds after which this worker starts no more trials"
    )
    worker.add_argument(
        "--objective",
        metavar="MODULE:FUNCTION",
        help="the objective to run (default: the one hpo search stored)",
    )
    worker.add_argument("--quiet", action="store_true", help="no live view")
    worker.add_argument("--tracking-uri", help="MLflow tracking URI (default: as hpo search)")
    worker.add_argument("--no-track", action="store_true", help="do not log to MLflow")
    worker.add_argument(
        "--no-system-metrics", action="store_true", help="no CPU/GPU/memory metrics in MLflow"
    )
    worker.set_defaults(command=cmd_worker)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run trials of a study on a database until complete + pruned trials reach its budget."""
    import logging

    from hpo.drivers import optuna_driver
    from hpo.drivers.base import StudySpec

    logging.getLogger("runner").setLevel(logging.WARNING)
    from hpo.quiet import quiet_libraries

    quiet_libraries(args.quiet)
    if args.parallel < 1:
        raise UserInputError(f"--parallel: must be >= 1, got {args.parallel}")
    from hpo.objective import RunnerObjective
    from hpo.validation import check_space_against_runner, check_worker

    check_worker(args.storage, args.tracking_uri, not args.no_track)  # before opening the database
    recipe = optuna_driver.read_recipe(args.storage, args.study)
    space = space_from_recipe(recipe)
    if args.timeout is not None:
        space = space.with_budget(timeout=args.timeout)
    objective = objective_from_recipe(recipe, args.study, args.objective)
    if isinstance(objective, RunnerObjective):  # this machine's data and config schema
        check_space_against_runner(space, objective)
    study = StudySpec.for_space(
        space,
        name=args.study,
        runs=args.runs,
        parallel=args.parallel,
        resume=True,
        storage=args.storage,
        quiet=args.quiet,
    )
    tracker = None
    if not args.no_track:
        from hpo.tracking import MlflowTracker

        tracker = MlflowTracker(args.tracking_uri, system_metrics=not args.no_system_metrics)
        tracker.connect()
    result = optuna_driver.join_study(space, study, objective, tracker)
    if result.stop_reason == "interrupted":
        from hpo.interrupts import study_interrupted

        return study_interrupted(result)
    counts = optuna_driver.stored_counts(args.storage, args.study)
    mine = ", ".join(f"{result.count(s)} {s}" for s in ("complete", "pruned", "failed"))
    every = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    print(f"this worker: {mine} in {study.dir}")
    print(f"study {args.study}: {every or 'no trials'} (budget: {space.budget.trials} trials)")
    ran = result.count("complete") + result.count("pruned") + result.count("failed")
    if ran and result.count("complete") + result.count("pruned") == 0:
        print(
            f"hpo: every trial of this worker failed; the first: {result.first_failure}",
            file=sys.stderr,
        )
        return 1
    return 0
