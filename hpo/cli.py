"""The `hpo` command. The only module that wires the runner, drivers and trackers together.

Here: main, the parser, and the commands that do the wiring, train and search. The other
commands add themselves to the parser from their own modules: worker (hpo.worker), best,
status and export (hpo.study_commands), prepare and evaluate (hpo.pipeline_commands).

Heavy libraries (torch, optuna, ray, mlflow) are imported inside the commands so that
`hpo --help` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hpo.interrupts import EXIT_INTERRUPTED, exit_at_next_signal, exit_on_interrupt

DEFAULT_EXPERIMENT = "experiments/lm_tiny.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    # first: Ctrl-C or SIGTERM while it starts ends it at once, one line, exit 130; a study
    # (hpo.interrupts.StopSignals) and the runner's loop stop cleanly instead while they run
    previous = exit_on_interrupt()
    try:
        code = _run_command(argv)
    except KeyboardInterrupt:  # a second Ctrl-C while a study or a training step ran
        exit_at_next_signal()
        print("hpo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    if code != EXIT_INTERRUPTED:  # main() called from Python: its handlers back
        import signal

        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    return code


def _run_command(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "command"):
        parser.print_help()
        return 2
    import logging

    from runner.errors import UserInputError

    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(message)s",
    )

    try:
        return args.command(args)
    except UserInputError as err:
        print(f"hpo: error: {err}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpo",
        description="Experiment management and hyperparameter search for PyTorch/transformers.",
    )
    commands = parser.add_subparsers(title="commands")

    train = commands.add_parser("train", help="run one training trial from an experiment config")
    train.add_argument(
        "--config", default=DEFAULT_EXPERIMENT, help="experiment YAML (default: %(default)s)"
    )
    train.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config key, e.g. -o train.learning_rate=3e-4 (repeatable)",
    )
    train.add_argument("--output", help="trial folder (default: the config's output_dir)")
    train.add_argument(
        "--resume", action="store_true", help="continue from OUTPUT/checkpoints/last.pt"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train on N processes (one per GPU) with DDP under torchrun; sets train.nproc=N",
    )
    train.add_argument("--help-config", action="store_true", help="list every config key and exit")
    train.set_defaults(command=cmd_train)

    search = commands.add_parser("search", help="search hyperparameters by running real trials")
    search.add_argument(
        "--space", required=True, help="search space YAML (experiments/spaces/*.yaml)"
    )
    search.add_argument("--experiment", help="experiment YAML to search (default: the space's)")
    search.add_argument("--driver", default="optuna", help="optuna (default), ray, bo or random")
    search.add_argument(
        "--study", help="study name and folder under --runs (default: the space file's name)"
    )
    search.add_argument("--runs", default="runs", help="where studies live (default: %(default)s)")
    search.add_argument("--trials", type=int, help="trials to complete (failed ones do not count)")
    search.add_argument(
        "--timeout", help="stop starting trials after this long: seconds, or 30m, 2h"
    )
    search.add_argument("--max-steps", type=int, help="training steps per trial")
    search.add_argument(
        "--parallel", type=int, default=1, help="trials at once, each in its own process"
    )
    search.add_argument(
        "--gpus-per-trial",
        type=int,
        metavar="G",
        help="GPUs each of the --parallel trials has to itself (CUDA_VISIBLE_DEVICES); default: "
        "the experiment's train.nproc when there are enough GPUs, else 0 (the trials share them)",
    )
    search.add_argument("--seed", type=int, help="seed of the search (default: the space's)")
    search.add_argument(
        "--storage",
        help="optuna storage: a database URL (default: a journal file in the study folder)",
    )
    search.add_argument(
        "--address",
        help="ray: join a running cluster (auto, HOST:PORT, or ray://HOST:PORT with ray[client])",
    )
    search.add_argument(
        "--enqueue", help="YAML list of params to run first (known-good configurations)"
    )
    search.add_argument(
        "--objective",
        metavar="MODULE:FUNCTION",
        help="search a Python function (params, reporter) -> float instead of the runner",
    )
    search.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set an experiment config key for every trial",
    )
    search.add_argument(
        "--resume",
        action="store_true",
        help="continue the study: keep finished trials, run the rest",
    )
    search.add_argument("--quiet", action="store_true", help="no live view")
    search.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)",
    )
    search.add_argument("--no-track", action="store_true", help="do not log the study to MLflow")
    search.add_argument(
        "--no-system-metrics", action="store_true", help="no CPU/GPU/memory metrics in MLflow"
    )
    search.set_defaults(command=cmd_search)

    from hpo.worker import add_worker_command

    add_worker_command(commands)

    from hpo.pipeline_commands import add_pipeline_commands
    from hpo.study_commands import add_study_commands

    add_study_commands(commands)
    add_pipeline_commands(commands, DEFAULT_EXPERIMENT)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from runner.config import describe_config, load_config

    if args.help_config:
        print(describe_config())
        return 0
    overrides = list(args.override) + ([f"output_dir={args.output}"] if args.output else [])
    if args.nproc is not None:
        overrides.append(f"train.nproc={args.nproc}")
    config = load_config(args.config, overrides)

    from hpo import launch

    if config.train.nproc > 1 and not launch.under_torchrun():
        # this command again, once per process under torchrun; each rank goes on below
        command = launch.train_command(
            config.train.nproc, args.config, overrides, resume=args.resume, quiet=args.quiet
        )
        return launch.run_torchrun(command, launch.rank_env(config.train.nproc))

    from hpo.progress import ProgressBar
    from runner import NullReporter, run_trial

    main_rank = launch.is_main_rank()  # under torchrun only rank 0 shows progress and the result
    quiet = args.quiet or not main_rank
    progress = NullReporter() if quiet else ProgressBar(config.train.max_steps)
    result = run_trial(config, progress, resume=args.resume)
    if isinstance(progress, ProgressBar):
        progress.close()
    if main_rank:
        print_result(result)
    return {"completed": 0, "pruned": 0, "interrupted": 130}.get(result.status, 1)


def cmd_search(args: argparse.Namespace) -> int:
    import dataclasses
    import logging

    from hpo.drivers import get_driver
    from hpo.drivers.base import StudySpec
    from hpo.objective import RunnerObjective, load_function
    from hpo.space import load_enqueue, load_space
    from runner.config import check_key
    from runner.errors import UserInputError

    # the live view reports each trial; the runner's own data/model lines would repeat per trial
    logging.getLogger("runner").setLevel(logging.WARNING)
    if args.parallel < 1:
        raise UserInputError(f"--parallel: must be >= 1, got {args.parallel}")
    space = load_space(
        args.space,
        experiment=args.experiment,
        driver=args.driver,
        config_key_check=None if args.objective else check_key,
    )
    space = space.with_budget(trials=args.trials, timeout=args.timeout, max_steps=args.max_steps)
    if args.seed is not None:
        space = space.with_seed(args.seed)
    if args.address:
        if args.driver != "ray":
            raise UserInputError(
                "--address: only the ray driver joins a cluster (use --driver ray)"
            )
        space = dataclasses.replace(
            space, driver_options={**space.driver_options, "address": args.address}
        )
    if args.objective:
        objective = load_function(args.objective)
    else:
        objective = RunnerObjective(
            space.experiment,
            metric=space.objective.metric,
            greater_is_better=space.objective.direction == "maximize",
            max_steps=space.budget.max_steps,
            overrides=args.override,
        )
    devices: list[str | None] = []
    if args.parallel > 1:  # concurrent trials get GPUs of their own (CUDA_VISIBLE_DEVICES)
        from hpo import launch

        gpus = launch.visible_gpus()
        per_trial = args.gpus_per_trial
        if per_trial is None:
            nproc = getattr(objective, "nproc", 1)
            per_trial = launch.default_gpus_per_trial(args.parallel, nproc, gpus)
        devices = launch.devices_for_trials(args.parallel, per_trial, gpus)
    study = StudySpec.for_space(
        space,
        name=args.study,
        runs=args.runs,
        parallel=args.parallel,
        resume=args.resume,
        storage=args.storage,
        quiet=args.quiet,
        enqueue=load_enqueue(args.enqueue, space) if args.enqueue else (),
        devices=tuple(devices),
    )
    tracker = None
    if not args.no_track:
        from hpo.tracking import MlflowTracker

        tracker = MlflowTracker(args.tracking_uri, system_metrics=not args.no_system_metrics)
        tracker.connect()  # an unreachable server stops here, before the study folder exists
    result = get_driver(args.driver).run(space, study, objective, tracker)
    if result.stop_reason == "interrupted":
        from hpo.interrupts import study_interrupted

        return study_interrupted(result)
    if tracker is not None:
        publish_study(tracker, result.dir)
    if result.count("complete") == 0 and result.count("pruned") == 0:
        reason = result.first_failure or "no trial ran"
        print(f"hpo: every trial failed; the first: {reason}", file=sys.stderr)
        return 1
    best = result.best
    if best is not None:
        print(f"best trial {best.number}: {space.objective.metric} {best.value:.6g}")
        for key, value in best.params.items():
            print(f"  {key} = {value}")
    print(f"study folder: {study.dir}")
    return 0


def publish_study(tracker, study_dir) -> None:
    """Plots and the best model (registered) on the study's MLflow run; a warning if that fails."""
    from hpo.tracking.artifacts import log_study_artifacts
    from hpo.tracking.model_registry import log_best_model

    try:
        log_study_artifacts(tracker.client, tracker.parent_run_id, study_dir)
        if (study_dir / "best" / "best.pt").is_file():  # plain-function objectives have none
            version = log_best_model(tracker.client, tracker.parent_run_id, study_dir)
            print(f"registered model {version.name} version {version.version}")
    except Exception as err:  # the study is done and on disk; publishing is best effort
        print(f"hpo: warning: study artifacts not logged to MLflow ({err})", file=sys.stderr)


def print_result(result) -> None:
    """The trial's outcome in a few lines: status, final and best metrics, checkpoints."""

    def show(metrics: dict) -> str:
        return "  ".join(f"{k} {v:.4f}" for k, v in metrics.items()) or "-"

    print(f"status      {result.status}" + (f" ({result.reason})" if result.reason else ""))
    print(f"steps       {result.steps} in {result.wall_seconds:.1f} s")
    print(f"final       {show(result.final_metrics)}")
    print(f"best        {show(result.best_metrics)} (step {result.best_step})")
    if result.events:
        print("events      " + "  ".join(f"{k} {v}" for k, v in result.events.items()))
    print(f"best ckpt   {result.best_checkpoint}")
    print(f"last ckpt   {result.last_checkpoint}")


if __name__ == "__main__":
    sys.exit(main())
