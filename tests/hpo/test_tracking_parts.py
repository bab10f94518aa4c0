"""Quick, in-process tests of tracking parts whose end-to-end tests run with the slow or service
tests: the system-metrics sampler, study publishing, how a run ends (scripts/quick_loop_modules.py asks that
the quick loop exercise every module)."""

from __future__ import annotations

import threading

from hpo.records import TrialRecord
from hpo.tracking.buffer import Op
from hpo.tracking.mlflow_runs import RUN_STATUS, new_best_params, put_trial_end, study_status
from hpo.tracking.mlflow_system_metrics import SystemMetricsSampler
from hpo.tracking.publish import publish_study
from hpo.tracking.run_metrics import MetricBook


def test_the_sampler_hands_each_running_trial_numbered_machine_readings_until_removed(
    tmp_path, monkeypatch
):
    got: list[tuple[str, dict[str, float], int]] = []
    two = threading.Event()

    def emit(run, metrics, step):
        got.append((run, metrics, step))
        if len(got) >= 2:
            two.set()

    monkeypatch.chdir(tmp_path)  # MLflow's monitor opens a client: no mlflow.db in the checkout
    # the sampler hands its readings to emit; the monitor's own client (a server URI, which opens
    # no store until a request, and none is made) is never used
    sampler = SystemMetricsSampler(emit, interval=0.05, tracking_uri="http://127.0.0.1:9")
    try:
        sampler.add("0")
        assert two.wait(timeout=30), "no readings within 30 s"
        sampler.remove("0")
    finally:
        sampler.stop()
    runs, steps = {run for run, _, _ in got}, [step for _, _, step in got]
    assert runs == {"0"} and steps == list(range(len(steps)))
    metrics = got[0][1]
    assert "system/cpu_utilization_percentage" in metrics, sorted(metrics)
    assert all(name.startswith("system/") for name in metrics)
    assert not sampler._thread.is_alive(), "stop() ends the sampling thread"


def test_publishing_a_study_that_cannot_be_read_is_a_warning_not_an_error(tmp_path, capsys):
    # the study is done and on disk: a failure to publish it returns False with one warning line
    assert publish_study(client=None, parent_run_id="run", study_dir=tmp_path / "gone") is False
    err = capsys.readouterr().err
    assert err.startswith("hpo: warning: study artifacts not logged to MLflow ("), err
    assert len(err.strip().splitlines()) == 1


class RecordingBuffer:
    """What a SendBuffer was given, in order: ("op", Op) and ("metrics", run, rows)."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def put(self, op: Op) -> None:
        self.calls.append(("op", op))

    def put_metrics(self, run: str, rows: list) -> None:
        self.calls.append(("metrics", run, rows))


def test_a_study_run_ends_as_its_stop_reason_says():
    assert study_status("interrupted") == "KILLED"
    assert study_status("failures") == "FAILED"
    assert study_status("storage") == "FAILED"  # a write error (disk full) did not finish
    assert study_status("budget") == "FINISHED"
    assert RUN_STATUS["pruned"] == "FINISHED", "a pruned trial is not a red KILLED run"


def test_best_params_already_logged_with_another_value_are_kept_with_a_warning(caplog):
    new = new_best_params({"best.lr": "0.1"}, {"lr": 0.2, "layers": 3})
    assert new == {"best.layers": "3"}, "MLflow params cannot change: only the new one is sent"
    assert "best.lr" in caplog.text
    assert new_best_params({"best.lr": "0.1"}, {"lr": 0.1}) == {}


def test_a_trial_run_ends_with_its_state_summary_metrics_config_and_status(tmp_path):
    trial = tmp_path / "trials" / "0"
    trial.mkdir(parents=True)
    (trial / "config.yaml").write_text("lr: 0.2\noutput_dir: /x\ntrain: {max_steps: 10}\n")
    book = MetricBook()
    book.open_trial("0")
    rows = book.rows("0", 5, {"val_loss": 2.0, "loss": 3.0, "note": "text"}, now=1)
    rows += book.rows("0", 10, {"val_loss": 2.5}, now=2)
    assert [r[0] for r in rows] == ["val_loss", "loss", "val_loss"], "numbers only"
    buffer = RecordingBuffer()
    record = TrialRecord(0, {"lr": 0.2}, "pruned", [2.5], "pruned at step 10", 4.0, 10, 100.0)
    put_trial_end(buffer, "0", record, book.close_trial("0"), book, tmp_path)

    ops = [c[1] for c in buffer.calls if c[0] == "op"]
    assert [(o.kind, o.run) for o in ops] == [("tags", "0"), ("params", "0"), ("end", "0")]
    assert ops[0].args["tags"]["hpo.state"] == "pruned"
    # the config minus the searched params and output_dir (that is tag hpo.trial_dir)
    assert ops[1].args["params"] == {"train.max_steps": "10"}
    assert ops[2].args == {"status": "FINISHED", "end_time": 104_000}
    metrics = {r[0]: r[1] for c in buffer.calls if c[0] == "metrics" for r in c[2]}
    assert metrics["best_val_loss"] == 2.0 and metrics["final_val_loss"] == 2.5
    assert metrics["duration_s"] == 4.0 and metrics["steps"] == 10
    assert not book.is_open("0")
