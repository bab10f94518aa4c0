"""The `hpo` command. The only module that wires the runner, drivers and trackers together.

Here: main, the parser, and the commands that do the wiring, train and search. The other
commands add themselves to the parser from their own modules: worker (hpo.worker), best,
status and export (hpo.study_commands), sync (hpo.sync_command), prepare and evaluate
(hpo.pipeline_commands), quantize (hpo.quantize_command).

Heavy libraries (torch, optuna, ray, mlflow) are imported inside the commands so that
`hpo --help` answers at once.

Over 300 lines because it is the one module that wires the runner, drivers and trackers
together (above): main and its error handling, the parser of train and search, read top to
bottom as their --help, and those two commands; every other command has a module of its own.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from hpo.cli_types import non_negative_int, positive_int
from hpo.interrupts import EXIT_INTERRUPTED, exit_at_next_signal, exit_on_interrupt
from hpo.quiet import quiet_libraries

DEFAULT_EXPERIMENT = "experiments/lm_tiny.yaml"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one hpo command; its exit code.

    What a user can get wrong (a UserInputError: bad flags, files, values) is one line
    `hpo: error: ...` and exit 2, raised before any work. A StorageError (disk full, read-only
    folder) is one line `hpo: error: ...` and exit 1: the input was right, the machine was not.
    Anything else is a bug in hpo: one line `hpo: internal error: ...` and exit 1. `hpo --debug
    COMMAND` or HPO_DEBUG=1 shows the traceback of either instead. Every line is printable():
    control characters escaped, at most 1000 characters.
    """
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
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("HPO_DEBUG", "") not in ("", "0") or _debug_flag_given(argv)
    parser = build_parser()
    from runner.errors import UserInputError

    try:
        args = parser.parse_args(argv)
    except UserInputError as err:  # a bad flag: UsageError from HpoArgumentParser.error
        return _report_error(err, debug, code=2)
    if not hasattr(args, "command"):
        parser.print_help(sys.stderr)
        return 2
    import logging

    from runner.files import StorageError

    logging.basicConfig(
        level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
        format="%(message)s",
    )
    try:
        return args.command(args)
    except UserInputError as err:
        return _report_error(err, debug, code=2)
    except StorageError as err:
        return _report_error(err, debug, code=1)
    except BrokenPipeError:  # `hpo status --json | head`: the reader has what it wanted
        return _stdout_closed()
    except Exception as err:  # a bug: one line, the traceback with --debug
        if debug:
            raise
        from hpo.terminal import printable

        print(
            f"hpo: internal error: {printable(f'{type(err).__name__}: {err}', limit=300)} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 1
    finally:
        if "hpo.quiet" in sys.modules:  # a command quietened other libraries: undo it
            sys.modules["hpo.quiet"].restore()


def _stdout_closed() -> int:
    """Exit 141 (128 + SIGPIPE), as a process SIGPIPE ended, without a message.

    stdout now points at /dev/null, so that Python's flush at exit does not fail a second time.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file (main() called from Python)
        pass
    return 141


def _debug_flag_given(argv: list[str]) -> bool:
    """Whether --debug comes before the command (parse_args may fail before it can say so)."""
    for arg in argv:
        if arg == "--debug":
            return True
        if not arg.startswith("-"):
            return False
    return False


def _report_error(err: Exception, debug: bool, code: int) -> int:
    from hpo.terminal import printable

    if debug:
        import traceback

        traceback.print_exception(err, file=sys.stderr)
    print(f"hpo: error: {printable(err)}", file=sys.stderr)
    return code


class HpoArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (a UsageError), not usage text and exit."""

    def error(self, message: str) -> NoReturn:
        from runner.errors import UsageError

        raise UsageError(f"{message} (see {self.prog} --help)")


class PrintVersion(argparse.Action):
    """--version: `hpo VERSION` on stdout, exit 0 (the version is looked up only when asked)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        from hpo.version import hpo_version

        print(f"hpo {hpo_version()}")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = HpoArgumentParser(
        prog="hpo",
        description="Experiment management and hyperparameter search for PyTorch/transformers.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error (also HPO_DEBUG=1); give it before the command",
    )
    parser.add_argument("--version", action=PrintVersion, help="print hpo's version and exit")
    commands = parser.add_subparsers(title="commands")  # subparsers are HpoArgumentParsers too

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
    train.add_argument(
        "--quiet", action="store_true", help="no progress bar, no third-party warnings or logs"
    )
    train.add_argument(
        "--nproc",
        type=positive_int,
        metavar="N",
        help="train on N processes (one per GPU) with DDP under torchrun; sets train.nproc=N",
    )
    train.add_argument(
        "--tracking-uri",
        help="log the trial as one MLflow run here (default: $MLFLOW_TRACKING_URI when set, "
        "else not tracked; train.report_to: none turns it off)",
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
    search.add_argument(
        "--trials", type=positive_int, help="trials to complete (failed ones do not count)"
    )
    search.add_argument(
        "--timeout", help="stop starting trials after this long: seconds, or 30m, 2h"
    )
    search.add_argument("--max-steps", type=positive_int, help="training steps per trial")
    search.add_argument(
        "--max-steps-total",
        type=positive_int,
        help="stop starting trials once all trials together ran this many steps; without "
        "--trials it replaces the space's trial count, so pruned trials buy more trials",
    )
    search.add_argument(
        "--parallel", type=positive_int, default=1, help="trials at once, each in its own process"
    )
    search.add_argument(
        "--gpus-per-trial",
        type=non_negative_int,
        metavar="G",
        help="GPUs each of the --parallel trials has to itself (CUDA_VISIBLE_DEVICES); default: "
        "the experiment's train.nproc when there are enough GPUs, else 0 (the trials share them)",
    )
    search.add_argument(
        "--seed", type=non_negative_int, help="seed of the search (default: the space's)"
    )
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
        "--command",
        dest="command_line",  # args.command is the subcommand's function
        help="run this command line as each trial, {param} placeholders filled (shell-quoted); "
        "it reports with hpo.report or printed 'hpo: {...}' lines (README: command trials)",
    )
    search.add_argument(
        "--kill-after",
        type=float,
        metavar="SECONDS",
        help="command trials: seconds between SIGTERM (pruned) or SIGINT (Ctrl-C) and SIGKILL "
        "(default: the space's command.kill_after, else 10)",
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
    search.add_argument(
        "--quiet", action="store_true", help="no live view, no third-party warnings or logs"
    )
    search.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)",
    )
    search.add_argument("--no-track", action="store_true", help="do not log the study to MLflow")
    search.add_argument(
        "--no-system-metrics", action="store_true", help="no CPU/GPU/memory metrics in MLflow"
    )
    from hpo.sync_command import add_sync_command, add_tracking_timeout_option

    add_tracking_timeout_option(search)
    search.set_defaults(command=cmd_search)

    from hpo.worker import add_worker_command

    add_worker_command(commands)

    from hpo.pipeline_commands import add_pipeline_commands
    from hpo.study_commands import add_study_commands

    add_study_commands(commands)
    from hpo.space_command import add_space_command

    add_space_command(commands)
    add_sync_command(commands)
    from hpo.quantize_command import add_quantize_command

    add_quantize_command(commands)
    add_pipeline_commands(commands, DEFAULT_EXPERIMENT, build_parser)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from runner.config import describe_config

    if args.help_config:
        print(describe_config())
        return 0
    overrides = list(args.override) + ([f"output_dir={args.output}"] if args.output else [])
    if args.nproc is not None:
        overrides.append(f"train.nproc={args.nproc}")
    from hpo.api import load_train_config, run_train

    config = load_train_config(args.config, overrides)  # what hpo.train runs, checked alike
    quiet_libraries(args.quiet)  # before torchrun's ranks start: they inherit it
    from hpo.validation import check_train

    check_train(config, args.config)  # the data, before the trial folder is created

    from hpo import launch, train_tracking

    # one MLflow run per trial, logged by the launching process (not by torchrun's ranks)
    store = None
    if not launch.under_torchrun() and train_tracking.tracking_wanted(config, args.tracking_uri):
        store, _ = train_tracking.open_store(args.tracking_uri)  # refused before any work

    if config.train.nproc > 1 and not launch.under_torchrun():
        # this command again, once per process under torchrun; each rank goes on below
        command = launch.train_command(
            config.train.nproc, args.config, overrides, resume=args.resume, quiet=args.quiet
        )
        code = launch.run_torchrun(command, launch.rank_env(config.train.nproc))
        if store is not None:
            train_tracking.log_trial(store, config)
        return code

    result = run_train(config, resume=args.resume, quiet=args.quiet)
    if store is not None:
        train_tracking.log_trial(store, config)
    if launch.is_main_rank():  # under torchrun only rank 0 shows progress and the result
        print_result(result)
    return {"complete": 0, "pruned": 0, "interrupted": 130}.get(result.status, 1)


def cmd_search(args: argparse.Namespace) -> int:
    import logging

    from hpo.api import SearchFailed, SearchOptions, check_outcome, run_search

    # the live view reports each trial; the runner's own data/model lines would repeat per trial
    logging.getLogger("runner").setLevel(logging.WARNING)
    quiet_libraries(args.quiet)
    options = SearchOptions(  # the options hpo.search builds: one search for both
        space=args.space,
        objective=args.objective,
        # --command's dest: args.command is the subcommand's function (set_defaults below)
        command=args.command_line,
        kill_after=args.kill_after,
        experiment=args.experiment,
        driver=args.driver,
        study=args.study,
        runs=args.runs,
        trials=args.trials,
        timeout=args.timeout,
        max_steps=args.max_steps,
        max_steps_total=args.max_steps_total,
        parallel=args.parallel,
        gpus_per_trial=args.gpus_per_trial,
        seed=args.seed,
        storage=args.storage,
        address=args.address,
        enqueue=args.enqueue,
        overrides=list(args.override),
        resume=args.resume,
        quiet=args.quiet,
        track=not args.no_track,
        tracking_uri=args.tracking_uri,
        system_metrics=not args.no_system_metrics,
        tracking_timeout=args.tracking_timeout,
    )
    result = run_search(options)
    from hpo.terminal import printable

    if result.interrupted:
        from hpo.interrupts import study_interrupted

        return study_interrupted(result)
    try:
        check_outcome(result)
    except SearchFailed as err:
        print(f"hpo: {printable(str(err))}", file=sys.stderr)
        return 1
    best = result.best_trial
    if best is not None:
        metric = result.objectives[0].metric
        print(f"best trial {best.number}: {printable(metric)} {best.value:.6g}")
        for key, value in best.params.items():
            print(f"  {printable(key)} = {printable(value)}")
    print(f"study folder: {printable(result.dir)}")
    return 0


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
