"""Quick, in-process tests of tracking parts whose end-to-end tests run with the slow or service
tests: the system-metrics sampler and study publishing (scripts/quick_loop_modules.py asks that
the quick loop exercise every module)."""

from __future__ import annotations

import threading

from hpo.tracking.mlflow_system_metrics import SystemMetricsSampler
from hpo.tracking.publish import publish_study


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
