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

    prepare = commands.add_parser("prepare", help="clean, split and tokenize an experiment's data")
    prepare.add_argument(
        "--config", default=DEFAULT_EXPERIMENT, help="experiment YAML (default: %(default)s)"
    )
    prepare.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    prepare.add_argument("--stats", help="also write the data statistics to this JSON file")
    prepare.set_defaults(command=cmd_prepare)

    evaluate = commands.add_parser("evaluate", help="score a checkpoint on its held-out split")
    evaluate.add_argument(
        "checkpoint", help="a checkpoint written by hpo (e.g. .../checkpoints/best.pt)"
    )
    evaluate.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="data settings to change, e.g. -o data.cache_dir=data/prepared",
    )
    evaluate.add_argument("--metrics", help="write the metrics to this JSON file (for dvc metrics)")
    evaluate.set_defaults(command=cmd_evaluate)
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


def cmd_prepare(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from runner.config import load_config
    from runner.data import prepare_data

    data = prepare_data(load_config(args.config, args.override))
    for key, value in data.stats.items():
        print(f"{key:<28} {value}")
    if args.stats:
        Path(args.stats).parent.mkdir(parents=True, exist_ok=True)
        Path(args.stats).write_text(json.dumps(data.stats, indent=2) + "\n")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from runner.evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.checkpoint, args.override)
    for key, value in metrics.items():
        print(f"{key:<16} {value:.4f}")
    if args.metrics:
        Path(args.metrics).parent.mkdir(parents=True, exist_ok=True)
        Path(args.metrics).write_text(json.dumps(metrics, indent=2) + "\n")
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
