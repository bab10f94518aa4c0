"""`hpo quantize RUN`: int8 dynamic quantization of a trained model, measured against fp32.

RUN is a checkpoint file, a trial folder (its checkpoints/best.pt, else last.pt), or a study
(a folder, or a name under --runs: its best/best.pt). The int8 model and quantize.json go to
quantized/ beside the checkpoint (runner.quantize); the terminal gets a table of size, the
experiment's metric (eval.metric_for_best_model, on the validation split as `hpo evaluate`
computes it) and median latency per batch, fp32 against int8.

MLflow: when the source belongs to a tracked study (runs/<study>/mlflow.json), the model and
report are logged as artifacts under quantized/ with metrics quantized.* in the run the
source came from: the study's parent run for its best (as `hpo export` does), the trial's child
run (tag hpo.trial) for a trial folder or one of its checkpoints. A checkpoint outside a study
(plain `hpo train`) is not tracked, so nothing is logged.

    hpo quantize lr_wd                          # runs/lr_wd/best/best.pt
    hpo quantize runs/lr_wd/trials/3            # that trial's best checkpoint
    hpo quantize runs/train/checkpoints/last.pt --no-track
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo.cli_types import add_data_overrides
from hpo.terminal import printable

ARTIFACT_DIR = "quantized"


@dataclass(frozen=True)
class Source:
    """The checkpoint to quantize and the study run it came from (for MLflow), if any."""

    checkpoint: Path
    study_dir: Path | None = None
    trial: int | None = None  # None with a study_dir: the study's best (its parent run)


def add_quantize_command(commands: argparse._SubParsersAction) -> None:
    quantize = commands.add_parser(
        "quantize", help="int8 dynamic quantization of a model, with size/metric/latency vs fp32"
    )
    quantize.add_argument(
        "run", help="a checkpoint file, a trial folder, or a study (folder or name under --runs)"
    )
    quantize.add_argument("--runs", default="runs", help="where studies live (default: runs)")
    quantize.add_argument("--out", help="folder to write to (default: quantized/ beside it)")
    add_data_overrides(quantize)
    quantize.add_argument(
        "--no-track", action="store_true", help="do not log to the source's MLflow run"
    )
    quantize.set_defaults(command=cmd_quantize)


def resolve_source(run: str | Path, runs: str | Path = "runs") -> Source:
    """What RUN names; a UserInputError when it names no checkpoint."""
    from runner.errors import UserInputError

    given = Path(run)
    if given.is_file():
        return _with_study(given)
    if not given.exists() and (Path(runs) / given / "study.yaml").is_file():
        given = Path(runs) / given
    if (given / "study.yaml").is_file():
        checkpoint = given / "best" / "best.pt"
        if not checkpoint.is_file():
            raise UserInputError(
                f"{given}: no best checkpoint ({checkpoint} not found); quantize a study that "
                "has a complete trial, or pass a checkpoint file"
            )
        return Source(checkpoint, given)
    if given.is_dir():
        for name in ("best.pt", "last.pt"):
            if (given / "checkpoints" / name).is_file():
                return _with_study(given / "checkpoints" / name)
        raise UserInputError(
            f"{given}: no checkpoints/best.pt or last.pt; pass a trial folder, a checkpoint "
            "file or a study"
        )
    raise UserInputError(
        f"{given}: not found; pass a checkpoint file, a trial folder, or a study (a folder, "
        f"or a name under {runs})"
    )


def _with_study(checkpoint: Path) -> Source:
    """The checkpoint, and the study and trial it belongs to when it lies in one:
    STUDY/best/*.pt (the best) or STUDY/trials/N/checkpoints/*.pt (trial N)."""
    folder = checkpoint.resolve().parent
    if folder.name == "best" and (folder.parent / "study.yaml").is_file():
        return Source(checkpoint, folder.parent)
    trial_dir = folder.parent
    if (
        folder.name == "checkpoints"
        and trial_dir.parent.name == "trials"
        and (trial_dir.parent.parent / "study.yaml").is_file()
        and trial_dir.name.isdigit()
    ):
        return Source(checkpoint, trial_dir.parent.parent, int(trial_dir.name))
    return Source(checkpoint)


def tracking_link(source: Source) -> dict[str, str] | None:
    """The study's mlflow.json when the source's study was tracked (checked before any work)."""
    from hpo.export_onnx import _read_link

    if source.study_dir is None or not (source.study_dir / "mlflow.json").is_file():
        return None
    return _read_link(source.study_dir / "mlflow.json")


def log_quantized(link: dict[str, str], source: Source, report: dict[str, Any]) -> str | None:
    """Log the int8 model and report to the source's run; its id, or None when the trial has
    no run in MLflow (its study's tracking has not sent it yet: `hpo sync`)."""
    from hpo.tracking.mlflow_store import child_runs, open_client

    client, _ = open_client(link["tracking_uri"])
    run_id = link["parent_run_id"]
    if source.trial is not None:
        experiment = link.get("experiment_id") or client.get_run(run_id).info.experiment_id
        run = child_runs(client, experiment, run_id).get(str(source.trial))
        if run is None:
            return None
        run_id = run.info.run_id
    client.log_artifact(run_id, report["path"], ARTIFACT_DIR)
    client.log_dict(run_id, report, f"{ARTIFACT_DIR}/quantize.json")
    for label in ("fp32", "int8"):
        for key, value in report[label].items():
            client.log_metric(run_id, f"quantized.{label}.{key}", value)
    return run_id


def cmd_quantize(args: argparse.Namespace) -> int:
    source = resolve_source(args.run, args.runs)
    link = None if args.no_track else tracking_link(source)
    from runner.quantize import REPORT_FILE, quantize_checkpoint

    report = quantize_checkpoint(source.checkpoint, args.out, args.override)
    print_table(report)
    print(f"int8 model  {printable(report['path'])}")
    print(f"report      {printable(str(Path(report['path']).with_name(REPORT_FILE)))}")
    if link is not None:
        logged = log_quantized(link, source, report)
        if logged is None:
            print(f"not logged  trial {source.trial} has no MLflow run yet (hpo sync)")
        else:
            print(f"logged to   {logged}")
    return 0


def print_table(report: dict[str, Any]) -> None:
    metric = report["metric"]
    rows = [("size (MB)", "size_mb", "size_ratio")]
    if metric in report["fp32"]:
        rows.append((metric, metric, None))
    rows.append(("latency/batch (ms)", "latency_ms", "latency_ratio"))
    print(f"{'':<20}{'fp32':>12}{'int8':>12}{'int8 vs fp32':>14}")
    for title, key, ratio in rows:
        fp32, int8 = report["fp32"][key], report["int8"][key]
        change = f"{report[ratio]:.3f}" if ratio else f"{int8 - fp32:+.2g}"
        print(f"{printable(title):<20}{fp32:>12.4g}{int8:>12.4g}{change:>14}")
