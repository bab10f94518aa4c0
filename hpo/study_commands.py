"""`hpo best`, `hpo status` and `hpo export`: commands that read a study's folder.

A study is named as under --runs (default runs/) or given as its folder:

    hpo best lr_wd               # the best trial of runs/lr_wd/, and how to retrain it
    hpo status runs/lr_wd        # its trials by state, then one line per trial
    hpo status lr_wd --json      # the same as one JSON document, for a script
    hpo export lr_wd --onnx      # its best model as ONNX, checked against PyTorch
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hpo.cli_types import finite_positive_float
from hpo.terminal import printable


def add_study_commands(commands: argparse._SubParsersAction) -> None:
    """Add best, status and export to the `hpo` command's subparsers."""
    best = commands.add_parser("best", help="print a study's best trial")
    best.add_argument("study", help="study name (under --runs) or folder")
    best.add_argument("--runs", default="runs")
    best.set_defaults(command=cmd_best)

    status = commands.add_parser("status", help="count a study's trials by state, list them")
    status.add_argument("study", help="study name (under --runs) or folder")
    status.add_argument("--runs", default="runs")
    status.add_argument(
        "--json", action="store_true", help="print one JSON document (for scripts) instead"
    )
    status.set_defaults(command=cmd_status)

    export = commands.add_parser("export", help="export a study's best model (ONNX)")
    export.add_argument("study", help="study name (under --runs) or folder")
    export.add_argument("--runs", default="runs")
    export.add_argument("--onnx", action="store_true", help="write ONNX, checked against PyTorch")
    export.add_argument("--out", help="where to write it (default: runs/STUDY/best/model.onnx)")
    export.add_argument(
        "--atol",
        type=finite_positive_float,
        default=1e-4,
        help="tolerance of the output check (a finite number > 0)",
    )
    export.add_argument(
        "--no-track", action="store_true", help="do not log it to the study's MLflow run"
    )
    export.set_defaults(command=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from hpo.extras import require_extra
    from runner.errors import UserInputError

    if not args.onnx:
        raise UserInputError("hpo export: say which format, e.g. --onnx")
    require_extra("onnx", "hpo export --onnx")
    from hpo.export_onnx import export_study_onnx
    from hpo.quiet import quiet_libraries

    quiet_libraries(quiet=False)  # MLflow's upload bars off; a warning is one line
    report = export_study_onnx(study_dir_of(args), args.out, atol=args.atol, log=not args.no_track)
    # one line per artifact written, then the check and where it was logged
    folder = Path(report["path"]).parent
    for name in report["files"]:
        kind = "onnx" if name.endswith(".onnx") else "onnx data"
        print(f"{kind:<11} {printable(folder / name)}")
    print(f"max |diff|  {report['max_abs_diff']:.3g} against PyTorch (atol {args.atol:g})")
    if report.get("logged_to"):
        print(f"logged to   {report['logged_to']}")
    return 0


def study_dir_of(args: argparse.Namespace) -> Path:
    given = Path(args.study)
    return given if (given / "study.yaml").exists() else Path(args.runs) / args.study


def cmd_best(args: argparse.Namespace) -> int:
    from hpo.study_report import describe_values
    from hpo.study_status import read_study
    from runner.errors import UserInputError

    status = read_study(study_dir_of(args))
    study = printable(status.study)
    if status.best is None:
        raise UserInputError(f"study {study}: no complete trial yet")
    best = status.best
    print(
        f"study {study}: best trial {best.number}: "
        f"{describe_values(status.objectives, best.values)}"
    )
    for key, value in best.params.items():
        print(f"  {printable(key)} = {printable(value)}")
    best_dir = study_dir_of(args) / "best"
    if (best_dir / "config.yaml").exists():
        print(f"retrain: hpo train --config {printable(best_dir / 'config.yaml')}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from hpo.study_lock import running_holder
    from hpo.study_report import (
        describe_values,
        print_json,
        print_reasons,
        print_trial_table,
        status_document,
    )
    from hpo.study_status import read_study

    status = read_study(study_dir_of(args))
    holder = running_holder(study_dir_of(args))
    run_by = holder.describe() if holder is not None else None
    if args.json:
        print_json(status_document(status, run_by))
        return 0
    print(f"study {printable(status.study)} ({printable(status.driver)})")
    if run_by is not None:
        print(f"  run by    {printable(run_by)}")
    for state, count in status.counts.items():
        print(f"  {state:<11} {count}")
    if status.best is not None:
        best = status.best
        print(f"  best      trial {best.number}: {describe_values(status.objectives, best.values)}")
    print()
    print_trial_table(status.trials)
    print_reasons(status.trials)
    return 0
