"""`hpo prepare` and `hpo evaluate`: the DVC pipeline's stages around the search.

As dvc.yaml runs them:

    hpo prepare --config experiments/lm_tiny.yaml -o data.cache_dir=data/prepared
        --stats data/prepared/stats.json
    hpo evaluate models/best/checkpoints/best.pt -o data.cache_dir=data/prepared
        --metrics metrics.json --curves plots
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_pipeline_commands(commands: argparse._SubParsersAction, default_experiment: str) -> None:
    """Add prepare and evaluate to the `hpo` command's subparsers."""
    prepare = commands.add_parser("prepare", help="clean, split and tokenize an experiment's data")
    prepare.add_argument(
        "--config", default=default_experiment, help="experiment YAML (default: %(default)s)"
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
    evaluate.add_argument(
        "--curves", help="write the trial's learning curves (train.csv, val.csv) to this folder"
    )
    evaluate.set_defaults(command=cmd_evaluate)


def cmd_prepare(args: argparse.Namespace) -> int:
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
    from runner.evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.checkpoint, args.override)
    for key, value in metrics.items():
        print(f"{key:<16} {value:.4f}")
    if args.metrics:
        Path(args.metrics).parent.mkdir(parents=True, exist_ok=True)
        Path(args.metrics).write_text(json.dumps(metrics, indent=2) + "\n")
    if args.curves:
        write_curves(Path(args.checkpoint).parent.parent / "metrics.jsonl", Path(args.curves))
    return 0


def write_curves(metrics_jsonl, folder) -> None:
    """train.csv and val.csv from a trial's metrics.jsonl, the learning curves for `dvc plots`."""
    from runner.metrics_log import read_metrics

    folder.mkdir(parents=True, exist_ok=True)
    for kind, name, columns in (
        ("train", "train.csv", ("loss", "lr", "grad_norm")),
        ("eval", "val.csv", None),
    ):
        records = read_metrics(metrics_jsonl, kind)
        keys = columns or [k for k in (records[0] if records else {}) if k not in ("type", "step")]
        rows = [",".join(["step", *keys])]
        rows += [",".join(str(r.get(k, "")) for k in ("step", *keys)) for r in records]
        (folder / name).write_text("\n".join(rows) + "\n")
