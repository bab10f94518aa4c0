"""What the tracker reads without MLflow: experiment names, git commit, DVC hashes, reconciliation."""

from __future__ import annotations

import os
import subprocess

import pytest

from hpo.drivers.base import TrialRecord
from hpo.study import INTERRUPTED
from hpo.tracking import provenance, reconcile
from hpo.tracking.mlflow_store import clean_key


def test_the_experiment_is_named_by_the_configs_name_else_its_stem_else_the_space(tmp_path):
    named = tmp_path / "lm_tiny.yaml"
    named.write_text("name: tiny_lm\ndata: {path: data/corpus.txt}\n")
    unnamed = tmp_path / "shakespeare.yaml"
    unnamed.write_text("task: lm\n")
    space = str(tmp_path / "spaces" / "lr.yaml")
    assert provenance.experiment_name(str(named), space, "lr") == "tiny_lm"
    assert provenance.experiment_name(str(unnamed), space, "lr") == "shakespeare"
    assert provenance.experiment_name(None, space, "lr") == "lr"
    assert provenance.data_path(str(named), space) == "data/corpus.txt"
    assert provenance.data_path(str(unnamed), space) is None


def git(cwd, *args):
    subprocess.run(
        ["git", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        },
    )


def test_the_git_commit_and_whether_tracked_files_changed(tmp_path):
    assert provenance.git_commit(tmp_path) is None
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-qm", "one")
    commit, dirty = provenance.git_commit(tmp_path)
    assert len(commit) == 40 and not dirty
    (tmp_path / "a.txt").write_text("two")
    assert provenance.git_commit(tmp_path) == (commit, True)


def test_the_dvc_hash_of_data_comes_from_its_dvc_file_or_a_folders(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "corpus.txt.dvc").write_text(
        "outs:\n- md5: 0123abcd\n  size: 10\n  hash: md5\n  path: corpus.txt\n"
    )
    assert provenance.dvc_hash("data/corpus.txt", tmp_path) == ("0123abcd", "data/corpus.txt.dvc")
    (tmp_path / "data.dvc").write_text("outs:\n- md5: 99ff.dir\n  hash: md5\n  path: data\n")
    assert provenance.dvc_hash("data/other.txt", tmp_path) == ("99ff.dir", "data.dvc")


def test_the_dvc_hash_of_data_comes_from_dvc_lock_outs_first(tmp_path):
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n"
        "  prepare:\n    cmd: prep\n    deps:\n    - path: raw\n      md5: aaa.dir\n"
        "    outs:\n    - path: prepared/tokens.bin\n      md5: bbb\n"
        "  search:\n    cmd: hpo search\n    deps:\n    - path: prepared/tokens.bin\n      md5: bbb\n"
    )
    assert provenance.dvc_hash("prepared/tokens.bin", tmp_path) == ("bbb", "dvc.lock")
    assert provenance.dvc_hash("raw/part1.txt", tmp_path) == ("aaa.dir", "dvc.lock")
    assert provenance.dvc_hash("elsewhere.txt", tmp_path) is None


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("val_loss", "val_loss"),
        ("train/loss", "train/loss"),
        ("loss@top-1", "loss_top-1"),
        ("/a//b/", "a/b"),
        ("../up", "up"),
        ("x" * 300, "x" * 250),
    ],
)
def test_metric_names_become_names_mlflow_accepts(raw, clean):
    assert clean_key(raw) == clean


def record(number, state, reason=None):
    return TrialRecord(
        number, {"lr": 0.1}, state, values=[1.0] if state == "complete" else None, reason=reason
    )


def test_reconciling_ends_running_runs_as_their_records_say_and_backfills_missing_runs():
    statuses = {"0": "FINISHED", "1": "RUNNING", "2": "RUNNING", "3": "RUNNING"}
    records = [
        record(0, "complete"),
        record(1, "complete"),
        record(2, "failed", INTERRUPTED),
        record(4, "pruned", "pruned at step 3"),
        record(5, "running"),
    ]
    to_end, to_make = reconcile.plan(statuses, records, known_runs=["study"])
    ended = {r.number: (r.state, r.reason) for r in to_end}
    assert ended == {1: ("complete", None), 2: ("failed", INTERRUPTED), 3: ("failed", INTERRUPTED)}
    assert [r.number for r in to_make] == [4]  # a finished record without a run; 5 still runs
