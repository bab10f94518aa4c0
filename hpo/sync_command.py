"""`hpo sync STUDY`: send to MLflow what a study could not send before it ended.

When the tracking store did not answer at the end of `hpo search` (or `hpo worker`), the
records it missed are kept in runs/<study>/mlflow_pending.jsonl and its runs may still be
RUNNING there. Once the store is back:

    hpo sync lr_wd                   # runs/lr_wd/, or a study folder
    hpo sync runs/lr_wd --tracking-timeout 300

sends them (each exactly once), ends every run the study left RUNNING with its trial's status,
and publishes the study's plots and best model if its end could not. Exit 0 when everything
arrived; 1, with the count still kept, when the store stopped answering within the timeout;
2 when the store does not answer at all or the study is still running (it sends its own).
The store is the one the study used (runs/<study>/mlflow.json); a sqlite:/// path in it is
relative to the folder the study ran in.
"""

from __future__ import annotations

import argparse
import sys


def add_sync_command(commands: argparse._SubParsersAction) -> None:
    """Add `sync` to the `hpo` command's subparsers."""
    sync = commands.add_parser(
        "sync", help="send a study's records MLflow missed (after a tracking outage)"
    )
    sync.add_argument("study", help="study name (under --runs) or folder")
    sync.add_argument("--runs", default="runs")
    add_tracking_timeout_option(sync)
    sync.set_defaults(command=cmd_sync)


def add_tracking_timeout_option(parser: argparse.ArgumentParser) -> None:
    """--tracking-timeout, shared by search and sync."""
    parser.add_argument(
        "--tracking-timeout",
        type=float,
        metavar="SECONDS",
        help="how long the end waits for an MLflow store that does not answer; what is unsent "
        "is kept for `hpo sync` (default: $HPO_TRACKING_TIMEOUT, else 60)",
    )


def cmd_sync(args: argparse.Namespace) -> int:
    from hpo.study_commands import study_dir_of as study_folder  # one rule for STUDY
    from hpo.tracking import MlflowTracker  # first: it sets MLflow's environment

    study_dir = study_folder(args)
    tracker = MlflowTracker(close_timeout=args.tracking_timeout, system_metrics=False)
    from mlflow.exceptions import MlflowException

    try:
        delivered = tracker.sync(study_dir)
    except MlflowException as err:  # it answered the health check, then stopped: nothing lost
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        print(
            f"hpo: {tracker.tracking_uri} stopped answering ({reason}); run hpo sync "
            "again when it answers",
            file=sys.stderr,
        )
        return 1
    if delivered:
        print(f"study {study_dir}: every record is in {tracker.tracking_uri}")
        return 0
    what = f"{tracker.pending_records} records" if tracker.pending_records else "its plots"
    print(
        f"hpo: {what} of {study_dir} are still waiting for {tracker.tracking_uri}; "
        "run hpo sync again when it answers",
        file=sys.stderr,
    )
    return 1
