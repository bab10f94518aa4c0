"""The pending journal (runs/<study>/mlflow_pending.jsonl), the tracking timeout's input checks,
and `hpo sync` refusing a study another process tracks. No MLflow server: these are files."""

from __future__ import annotations

import fcntl
import json
import math
from pathlib import Path

import pytest

from hpo.cli import main
from hpo.tracking.pending import LEGACY_FILE, PENDING_FILE, PendingJournal, count

ROOT = Path(__file__).parents[2]


def entry(run: str, steps: range, kind: str = "end") -> dict:
    return {
        "ops": [{"kind": kind, "run": run, "args": {"status": "FINISHED", "end_time": 1}}],
        "metrics": {run: [["loss", 1.0 / (s + 1), 1000 + s, s] for s in steps]},
    }


def test_a_taker_settles_what_it_took_and_keeps_what_others_appended_meanwhile(tmp_path):
    journal = PendingJournal(tmp_path)
    journal.append(entry("0", range(3)))
    journal.append(entry("1", range(2)))
    taken, ids = journal.take()
    assert [o["run"] for o in taken["ops"]] == ["0", "1"]
    assert count(taken) == 2 + 5
    journal.append(entry("2", range(4)))  # another process of the study, meanwhile
    journal.settle(ids, entry("1", range(1, 2)))  # the taker could not send one row and an end
    left, _ = journal.take()
    assert sorted(o["run"] for o in left["ops"]) == ["1", "2"]
    assert [r[3] for r in left["metrics"]["1"]] == [1]
    assert [r[3] for r in left["metrics"]["2"]] == [0, 1, 2, 3]


def test_settling_everything_removes_the_journal(tmp_path):
    journal = PendingJournal(tmp_path)
    journal.append(entry("0", range(3)))
    _, ids = journal.take()
    journal.settle(ids, None)
    assert not (tmp_path / PENDING_FILE).exists() and not journal.exists()


def test_a_torn_last_line_is_skipped_and_the_next_entry_starts_on_a_line_of_its_own(tmp_path):
    journal = PendingJournal(tmp_path)
    journal.append(entry("0", range(2)))
    with (tmp_path / PENDING_FILE).open("a") as handle:  # a process killed mid-append
        handle.write('{"ops": [{"kind": "en')
    journal.append(entry("1", range(2)))
    taken, ids = journal.take()
    assert [o["run"] for o in taken["ops"]] == ["0", "1"]
    assert len(ids) == 2


def test_nan_values_survive_the_journal(tmp_path):
    journal = PendingJournal(tmp_path)
    journal.append({"ops": [], "metrics": {"0": [["loss", float("nan"), 1, 0]]}})
    taken, _ = journal.take()
    assert math.isnan(taken["metrics"]["0"][0][1])


def test_the_single_file_of_earlier_versions_is_taken_too(tmp_path):
    (tmp_path / LEGACY_FILE).write_text(json.dumps(entry("0", range(2))))
    journal = PendingJournal(tmp_path)
    journal.append(entry("1", range(1)))
    taken, ids = journal.take()
    assert [o["run"] for o in taken["ops"]] == ["0", "1"]
    journal.settle(ids, None)
    assert not journal.exists()


def test_a_publish_mark_alone_is_kept(tmp_path):
    journal = PendingJournal(tmp_path)
    journal.append({"publish": True})
    taken, _ = journal.take()
    assert taken["publish"] and count(taken) == 0


@pytest.mark.parametrize(
    ("argument", "environment", "message"),
    [
        (["--tracking-timeout", "-1"], None, "--tracking-timeout: expected seconds >= 0"),
        (["--tracking-timeout", "nan"], None, "--tracking-timeout: expected seconds >= 0"),
        ([], "soon", "HPO_TRACKING_TIMEOUT: expected seconds, got 'soon'"),
    ],
)
def test_a_bad_tracking_timeout_is_one_line_exit_2_before_any_work(
    argument, environment, message, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(ROOT)
    if environment is not None:
        monkeypatch.setenv("HPO_TRACKING_TIMEOUT", environment)
    code = main(
        [
            "search",
            "--space",
            "experiments/spaces/lr_wd.yaml",
            "--objective",
            "tests.hpo.search_objectives:quadratic",
            "--runs",
            str(tmp_path / "runs"),
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--quiet",
            *argument,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"hpo: error: {message}"] or (len(err) == 1 and message in err[0])
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()


def test_sync_refuses_a_study_that_another_process_tracks(tmp_path, capsys):
    study = tmp_path / "runs" / "s"
    study.mkdir(parents=True)
    (study / "study.yaml").write_text("study: s\n")
    (study / "mlflow.json").write_text(
        json.dumps({"tracking_uri": f"sqlite:///{tmp_path / 'm.db'}", "parent_run_id": "x"})
    )
    PendingJournal(study).append(entry("0", range(2)))
    before = (study / PENDING_FILE).read_bytes()
    (tmp_path / "m.db").touch()
    with (study / "mlflow.lock").open("a") as running:  # as a running study's tracker holds it
        fcntl.flock(running, fcntl.LOCK_SH)
        assert main(["sync", str(study)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the study is running" in err[0]
    assert (study / PENDING_FILE).read_bytes() == before
    assert (tmp_path / "m.db").stat().st_size == 0  # it stopped before opening the store


def test_sync_in_another_folder_than_a_relative_sqlite_store_makes_no_empty_store(
    tmp_path, monkeypatch, capsys
):
    study = tmp_path / "runs" / "s"
    study.mkdir(parents=True)
    (study / "study.yaml").write_text("study: s\n")
    (study / "mlflow.json").write_text(
        json.dumps({"tracking_uri": "sqlite:///mlflow.db", "parent_run_id": "x"})
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["sync", str(study)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "run hpo sync in the folder the study ran in" in err[0]
    assert list(elsewhere.iterdir()) == [] and not (study / "mlflow.lock").exists()
