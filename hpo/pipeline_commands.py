"""`hpo prepare`, `hpo evaluate` and `hpo pipeline STAGE`: the DVC pipeline's commands.

dvc.yaml never pastes a value into a shell command (a `${search.seed}` of `0; touch pwned #`
ran `touch`): its stages run fixed command lines, and `hpo pipeline STAGE` reads the stage's
section of params.yaml itself, checks every value (type, range, a safe study name), and runs
the stage's hpo command with those values as arguments, never through a shell:

    python -m hpo pipeline prepare   # hpo prepare --config=EXPERIMENT -o data.cache_dir=...
    python -m hpo pipeline search    # hpo search --space=SPACE --study=STUDY ... --resume,
                                     # then runs/STUDY/metrics.json (study_metrics)
    python -m hpo pipeline train     # hpo train --config=runs/STUDY/best/config.yaml ...
    python -m hpo evaluate models/best/checkpoints/best.pt -o data.cache_dir=data/prepared
        --metrics metrics.json --curves plots

DVC still tracks the params (the stages' `params:`), so `dvc exp run -S search.trials=8` works:
DVC writes params.yaml, the command reads it.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpo.cli_types import add_data_overrides
from hpo.pipeline_params import STAGES, read_params, stage_command

# The pipeline's fixed paths (PREPARED, BEST_MODEL: dvc.yaml's deps and outs name the same
# ones) are in hpo.pipeline_params, with the stages' params.
STUDY_METRICS = "metrics.json"  # in runs/STUDY/: the search's DVC metrics, numbers only


def add_pipeline_commands(
    commands: argparse._SubParsersAction,
    default_experiment: str,
    hpo_parser: Callable[[], argparse.ArgumentParser],
) -> None:
    """Add prepare, evaluate and pipeline to the `hpo` command's subparsers.

    hpo_parser: the whole `hpo` parser's maker (hpo.cli.build_parser), with which `hpo pipeline
    STAGE` reads the stage's command line; handed down, since hpo.cli imports this module.
    """
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
    add_data_overrides(evaluate)
    evaluate.add_argument("--metrics", help="write the metrics to this JSON file (for dvc metrics)")
    evaluate.add_argument(
        "--curves", help="write the trial's learning curves (train.csv, val.csv) to this folder"
    )
    evaluate.set_defaults(command=cmd_evaluate)

    pipeline = commands.add_parser(
        "pipeline",
        help="run a DVC pipeline stage (prepare, search, train) with its params from params.yaml",
    )
    pipeline.add_argument("stage", choices=tuple(STAGES), help="the stage of dvc.yaml to run")
    pipeline.add_argument(
        "--params", default="params.yaml", help="the pipeline's parameters (default: %(default)s)"
    )
    pipeline.set_defaults(command=cmd_pipeline, hpo_parser=hpo_parser)


def atomic_write_text(path: str | Path, text: str) -> None:
    from runner.files import atomic_write_text as write

    write(path, text)


def cmd_prepare(args: argparse.Namespace) -> int:
    from runner.config import load_config
    from runner.data import prepare_data

    data = prepare_data(load_config(args.config, args.override))
    for key, value in data.stats.items():
        print(f"{key:<28} {value}")
    if args.stats:
        atomic_write_text(args.stats, json.dumps(data.stats, indent=2) + "\n")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from runner.evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(args.checkpoint, args.override)
    for key, value in metrics.items():
        print(f"{key:<16} {value:.4f}")
    if args.metrics:
        atomic_write_text(args.metrics, json.dumps(metrics, indent=2) + "\n")
    if args.curves:
        write_curves(Path(args.checkpoint).parent.parent / "metrics.jsonl", Path(args.curves))
    return 0


def write_curves(metrics_jsonl, folder) -> None:
    """train.csv and val.csv from a trial's metrics.jsonl, the learning curves for `dvc plots`."""
    from runner.metrics_log import NOT_REPRODUCIBLE, read_metrics

    folder.mkdir(parents=True, exist_ok=True)
    for kind, name, columns in (
        ("train", "train.csv", ("loss", "lr", "grad_norm")),
        ("eval", "val.csv", None),
    ):
        records = read_metrics(metrics_jsonl, kind)
        # the model's numbers only: a clock's (val_latency_ms) would differ in every repro
        skipped = {"type", "step", *NOT_REPRODUCIBLE}
        keys = columns or [k for k in (records[0] if records else {}) if k not in skipped]
        rows = [",".join(["step", *keys])]
        rows += [",".join(str(r.get(k, "")) for k in ("step", *keys)) for r in records]
        atomic_write_text(folder / name, "\n".join(rows) + "\n")


# ----------------------------------------------------------------------------- hpo pipeline


def cmd_pipeline(args: argparse.Namespace) -> int:
    params = read_params(args.params, args.stage)
    stage_args = args.hpo_parser().parse_args(stage_command(args.stage, params))
    logging.getLogger().setLevel(logging.WARNING)  # the stages run --quiet, as before
    code = stage_args.command(stage_args)
    if args.stage == "search" and code == 0:
        study_dir = Path(stage_args.runs) / params["search.study"]
        summary = json.loads((study_dir / "summary.json").read_text())
        text = json.dumps(study_metrics(summary), indent=2) + "\n"
        atomic_write_text(study_dir / STUDY_METRICS, text)
    return code


def study_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a study's summary.json, for `dvc metrics` (which shows every value of a
    metrics file, strings too): best_<metric> (the objective's best value, or null when no
    trial completed), best_trial, n_trials by state, total_steps, wall_seconds, and the best
    params that are numbers under best_params (a categorical's choice is in best_params.yaml).
    summary.json keeps the rest: study, driver, objective, stop reason, first failure."""
    metric = summary["objective"]["metric"]
    best = summary.get("best_params") or {}
    return {
        f"best_{metric}": summary.get("best_value"),
        "best_trial": summary.get("best_trial"),
        "n_trials": dict(summary.get("n_trials") or {}),
        "total_steps": summary.get("total_steps"),
        "wall_seconds": summary.get("wall_seconds"),
        "best_params": {
            key: value
            for key, value in best.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        },
    }
