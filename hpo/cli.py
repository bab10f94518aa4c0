"""The `hpo` command. The only module that wires the runner, drivers and trackers together.

Heavy libraries (torch, optuna, ray, mlflow) are imported inside the commands so that
`hpo --help` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

DEFAULT_EXPERIMENT = "experiments/lm_tiny.yaml"


def main(argv: Sequence[str] | None = None) -> int:
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
    train.add_argument("--help-config", action="store_true", help="list every config key and exit")
    train.set_defaults(command=cmd_train)
    return parser


def cmd_train(args: argparse.Namespace) -> int:
    from runner.config import describe_config, load_config

    if args.help_config:
        print(describe_config())
        return 0
    overrides = list(args.override) + ([f"output_dir={args.output}"] if args.output else [])
    config = load_config(args.config, overrides)

    from hpo.progress import ProgressBar
    from runner import NullReporter, run_trial

    progress = NullReporter() if args.quiet else ProgressBar(config.train.max_steps)
    result = run_trial(config, progress, resume=args.resume)
    if isinstance(progress, ProgressBar):
        progress.close()
    print_result(result)
    return {"completed": 0, "pruned": 0, "interrupted": 130}.get(result.status, 1)


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
