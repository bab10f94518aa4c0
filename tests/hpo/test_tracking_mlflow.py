"""MlflowTracker against a real `mlflow server`: what arrives is read back with MLflow's client.

The tracker is driven through the Tracker protocol with synthetic trials, as hpo.parallel
drives it, so these tests do not depend on any search library.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from mlflow_server import shared_server

from hpo.drivers.base import StudySpec, TrialPruned, TrialRecord
from hpo.study import INTERRUPTED, finish_study, open_study, previous_trials, write_trial
from hpo.tracking import MlflowTracker

pytestmark = pytest.mark.service
_names = itertools.count()


@pytest.fixture
def server():
    return shared_server()


@pytest.fixture
def client(server):
    from mlflow.tracking import MlflowClient

    return MlflowClient(server.uri)


@pytest.fixture
def tracker_for(server, request):
    """tracker_for(**options): an MlflowTracker on the server, in an experiment of this test."""
    name = f"{request.node.name}-{next(_names)}"

    def make(**options):
        options.setdefault("system_metrics", False)
        options.setdefault("flush_interval", 0.2)
        return MlflowTracker(server.uri, experiment_name=name, **options)

    return make


def begin(tracker, space, tmp_path, name="s", resume=False):
    study = StudySpec.for_space(space, name=name, runs=tmp_path / "runs", resume=resume)
    previous = open_study(study, space, "random", previous_trials(study, space))
    tracker.start_study(space, study, "random")
    return study, previous


def run_trial(
    tracker, study, number, state="complete", steps=20, value=None, reason=None, params=None
):
    """One synthetic trial: train metrics every step, validation every 5 steps."""
    params = params or {"lr": 10.0 ** -(number + 2), "y": 0.1 * number}
    record = TrialRecord(number, params, started=time.time())
    write_trial(study.dir, record)
    tracker.start_trial(number, params)
    for step in range(1, steps + 1):
        tracker.log_metrics(
            number,
            step,
            {"loss": 5.0 / step, "lr": 1e-3, "grad_norm": 1.0, "tokens_per_sec": 1000.0 + step},
        )
        if step % 5 == 0:
            tracker.log_metrics(
                number, step, {"val_loss": 4.0 / step + number, "val_perplexity": 2.0}
            )
    record.state, record.steps, record.reason = state, steps, reason
    record.values = [value if value is not None else 4.0 / steps + number]
    record.duration = time.time() - record.started
    write_trial(study.dir, record)
    tracker.end_trial(record)
    return record


def finish(tracker, study, space, reason="budget"):
    result = finish_study(study, space, "random", 1.0, reason)
    tracker.end_study(result)
    return result


def runs_of(client, tracker):
    runs = client.search_runs([tracker.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {int(r.data.tags["hpo.trial"]): r for r in runs if r not in parents}
    return parents, children


def steps_of(client, run, key):
    return sorted(m.step for m in client.get_metric_history(run.info.run_id, key))


def test_a_study_is_one_parent_run_with_a_nested_child_per_trial(
    make_space, tracker_for, client, tmp_path
):
    space = make_space("random", trials=3)
    tracker = tracker_for()
    study, _ = begin(tracker, space, tmp_path)
    for number in range(3):
        run_trial(tracker, study, number)
    finish(tracker, study, space)

    parents, children = runs_of(client, tracker)
    assert len(parents) == 1 and sorted(children) == [0, 1, 2]
    parent = parents[0]
    assert parent.info.run_id == tracker.parent_run_id and parent.info.run_name == "s"
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children.values())
    assert {r.info.status for r in (parent, *children.values())} == {"FINISHED"}


def test_a_child_holds_params_stepped_metrics_best_and_final_and_tags(
    make_space, tracker_for, client, tmp_path
):
    space = make_space("random", trials=1)
    tracker = tracker_for()
    study, _ = begin(tracker, space, tmp_path)
    config = study.dir / "trials" / "0" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text(
        "output_dir: /somewhere/trials/0\ntrain:\n  learning_rate: 0.01\n  max_steps: 20\n"
        "  torch_compile: false\n  warmup_ratio: 1.0e-05\nmodel: {n_layer: 2}\n"
        "data: {path: null, sizes: [1, 2]}\n"
    )
    run_trial(tracker, study, 0, params={"lr": 0.01, "y": 0.5})
    finish(tracker, study, space)

    child = runs_of(client, tracker)[1][0]
    data = child.data
    assert data.params["lr"] == "0.01" and data.params["y"] == "0.5"
    assert data.params["train.max_steps"] == "20" and data.params["model.n_layer"] == "2"
    # as the config file spells them, never Python's None/False
    assert data.params["train.torch_compile"] == "false" and data.params["data.path"] == "null"
    assert data.params["train.warmup_ratio"] == "1e-05" and data.params["data.sizes"] == "[1, 2]"
    # output_dir differs in every trial: a tag, so "show diff only" shows the searched params
    assert "output_dir" not in data.params
    assert data.tags["hpo.trial_dir"] == str((study.dir / "trials" / "0").resolve())
    for key in ("loss", "lr", "grad_norm", "tokens_per_sec"):
        assert steps_of(client, child, key) == list(range(1, 21))
    assert steps_of(client, child, "val_loss") == [5, 10, 15, 20]
    history = {m.step: m.value for m in client.get_metric_history(child.info.run_id, "loss")}
    assert history[4] == pytest.approx(1.25)
    assert data.metrics["best_val_loss"] == pytest.approx(0.2)
    assert data.metrics["final_val_perplexity"] == 2.0 and data.metrics["steps"] == 20
    assert data.metrics["duration_s"] >= 0
    assert data.tags["hpo.trial"] == "0" and data.tags["hpo.state"] == "complete"
    assert data.tags["hpo.driver"] == "random" and data.tags["hpo.sampler"] == "random"
    assert data.tags["hpo.pruner"] == "none" and data.tags["hpo.study"] == "s"
    assert child.info.end_time >= child.info.start_time


def test_pruned_trials_end_finished_tagged_pruned_and_failed_ones_failed_with_their_reason(
    make_space, tracker_for, client, tmp_path
):
    space = make_space("random", trials=3)
    tracker = tracker_for()
    study, _ = begin(tracker, space, tmp_path)
    run_trial(tracker, study, 0)
    run_trial(tracker, study, 1, state="pruned", reason="pruned at step 10", steps=10)
    run_trial(tracker, study, 2, state="failed", reason="RuntimeError: out of memory", steps=3)
    finish(tracker, study, space)

    parents, children = runs_of(client, tracker)
    # pruning is the pruner doing its job: FINISHED, not a red KILLED; the tag tells them apart
    assert [children[n].info.status for n in range(3)] == ["FINISHED", "FINISHED", "FAILED"]
    assert [children[n].data.tags["hpo.state"] for n in range(3)] == [
        "complete",
        "pruned",
        "failed",
    ]
    assert children[1].data.tags["hpo.reason"] == "pruned at step 10"
    assert children[2].data.tags["hpo.reason"] == "RuntimeError: out of memory"
    assert all(r.info.status != "RUNNING" for r in (*parents, *children.values()))


def test_the_parent_holds_settings_artifacts_best_counts_and_history(
    make_space, tracker_for, client, tmp_path
):
    space = make_space("random", trials=3)
    tracker = tracker_for()
    study, _ = begin(tracker, space, tmp_path)
    run_trial(tracker, study, 0, value=3.0)
    run_trial(tracker, study, 1, value=1.0, params={"lr": 1e-3, "y": 0.3})
    run_trial(tracker, study, 2, state="failed", reason="boom")
    finish(tracker, study, space)

    parent = client.get_run(tracker.parent_run_id)
    data = parent.data
    assert data.params["driver"] == "random" and data.params["space.budget.trials"] == "3"
    assert data.params["space.objective.metric"] == "val_loss"
    # study-level metrics are named study_*: no chart mixes them with the trials' best_val_loss
    assert data.metrics["study_best_val_loss"] == 1.0
    assert not {"best_val_loss", "n_complete", "wall_seconds"} & set(data.metrics)
    assert (data.metrics["study_n_complete"], data.metrics["study_n_failed"]) == (2, 1)
    assert data.metrics["study_wall_seconds"] >= 0
    # the best params are params of the study's run (and tags, which may change on resume)
    assert data.params["best.lr"] == "0.001" and data.params["best.y"] == "0.3"
    assert data.tags["hpo.best_trial"] == "1" and data.tags["hpo.best.lr"] == "0.001"
    assert data.tags["hpo.searched"] == ",".join(p.name for p in space.searched)
    assert data.tags["hpo.stop_reason"] == "budget"
    history = client.get_metric_history(parent.info.run_id, "study_trial_val_loss")
    assert [(m.step, m.value) for m in history] == [(0, 3.0), (1, 1.0)]
    best = client.get_metric_history(parent.info.run_id, "study_best_val_loss")
    assert [m.value for m in sorted(best, key=lambda m: m.step)][:2] == [3.0, 1.0]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"study.yaml", "summary.json", "best_params.yaml"} <= artifacts
    local = client.download_artifacts(parent.info.run_id, "study.yaml", str(tmp_path))
    assert Path(local).read_text() == (study.dir / "study.yaml").read_text()


def test_the_git_commit_tag_is_set_inside_a_git_repository(
    make_space, tracker_for, client, tmp_path
):
    tracker = tracker_for()
    space = make_space("random", trials=1)
    study, _ = begin(tracker, space, tmp_path)
    run_trial(tracker, study, 0)
    finish(tracker, study, space)
    tags = client.get_run(tracker.parent_run_id).data.tags
    commit = tags.get("mlflow.source.git.commit")
    assert commit is None or len(commit) == 40  # the test suite may run outside a repository
    assert "hpo.data_md5" not in tags  # a plain function's study has no data to hash


def test_parallel_trials_interleaved_lose_no_metric(make_space, tracker_for, client, tmp_path):
    space = make_space("random", trials=4)
    tracker = tracker_for()
    study, _ = begin(tracker, space, tmp_path)
    for number in range(4):
        tracker.start_trial(number, {"lr": 0.01, "y": number / 10})
    for step in range(600):  # four trials report in turn, as K=4 workers do
        for number in range(4):
            tracker.log_metrics(number, step, {"loss": step + number, "lr": 1e-3, "grad_norm": 1.0})
    for number in range(4):
        tracker.end_trial(
            TrialRecord(
                number,
                {"lr": 0.01, "y": number / 10},
                "complete",
                values=[1.0],
                steps=599,
                started=time.time(),
            )
        )
    finish(tracker, study, space)

    _, children = runs_of(client, tracker)
    for number, child in children.items():
        for key in ("loss", "lr", "grad_norm"):
            assert steps_of(client, child, key) == list(range(600)), (number, key)
    assert tracker.buffer is None  # closed, nothing left behind


def test_resending_a_batch_that_already_committed_adds_no_duplicate(client, server):
    """What the buffer relies on when an answer is lost: the SQL store absorbs exact repeats."""
    from mlflow.entities import Metric

    experiment = client.create_experiment(f"resend-{next(_names)}")
    run = client.create_run(experiment)
    batch = [Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(50)]
    client.log_batch(run.info.run_id, metrics=batch)
    client.log_batch(run.info.run_id, metrics=batch)
    assert len(client.get_metric_history(run.info.run_id, "loss")) == 50


def test_a_resumed_study_reuses_its_parent_and_ends_the_children_a_kill_left_running(
    make_space, tracker_for, client, tmp_path
):
    space = make_space("random", trials=4)
    first = tracker_for()
    study, _ = begin(first, space, tmp_path)
    run_trial(first, study, 0)
    write_trial(study.dir, TrialRecord(1, {"lr": 0.1, "y": 0.1}, started=time.time()))
    first.start_trial(1, {"lr": 0.1, "y": 0.1})
    first.log_metrics(1, 1, {"loss": 3.0})
    # trial 2 completed on disk but its run never reached the store
    write_trial(
        study.dir,
        TrialRecord(
            2,
            {"lr": 0.2, "y": 0.2},
            "complete",
            values=[0.5],
            steps=7,
            started=time.time(),
            duration=2.0,
        ),
    )
    assert first.flush(30)
    first.buffer.close(timeout=0)  # kill -9: no end_trial, no end_study
    parent_id = first.parent_run_id
    assert client.get_run(parent_id).info.status == "RUNNING"

    second = tracker_for()
    study, previous = begin(second, space, tmp_path, resume=True)
    assert second.parent_run_id == parent_id
    assert {r.number: r.state for r in previous} == {0: "complete", 1: "interrupted", 2: "complete"}
    run_trial(second, study, 3)
    finish(second, study, space)

    parents, children = runs_of(client, second)
    assert [p.info.run_id for p in parents] == [parent_id]
    assert sorted(children) == [0, 1, 2, 3]
    assert children[1].info.status == "KILLED"
    assert children[1].data.tags["hpo.reason"] == INTERRUPTED
    assert (
        children[2].info.status == "FINISHED" and children[2].data.metrics["best_val_loss"] == 0.5
    )
    assert children[2].data.tags["hpo.backfilled"] == "true"
    assert all(r.info.status != "RUNNING" for r in (*parents, *children.values()))
    assert client.get_run(parent_id).data.metrics["study_n_complete"] == 3


def test_reconcile_ends_the_runs_of_a_killed_study_without_resuming_it(
    make_space, tracker_for, client, tmp_path
):
    space = make_space("random", trials=2)
    first = tracker_for()
    study, _ = begin(first, space, tmp_path)
    write_trial(study.dir, TrialRecord(0, {"lr": 0.1, "y": 0.1}, started=time.time()))
    first.start_trial(0, {"lr": 0.1, "y": 0.1})
    assert first.flush(30)
    first.buffer.close(timeout=0)
    first._unlock_study()  # kill -9: the kernel releases the dead process's lock on the study

    tracker_for().reconcile(study.dir)
    parents, children = runs_of(client, first)
    assert parents[0].info.status == "KILLED" and children[0].info.status == "KILLED"


def test_system_metrics_are_logged_into_each_running_trial(
    make_space, tracker_for, client, tmp_path
):
    space = make_space("random", trials=1)
    tracker = tracker_for(system_metrics=True, system_metrics_interval=0.2)
    study, _ = begin(tracker, space, tmp_path)
    tracker.start_trial(0, {"lr": 0.01, "y": 0.1})
    time.sleep(1.5)
    tracker.end_trial(TrialRecord(0, {"lr": 0.01, "y": 0.1}, "complete", values=[1.0]))
    finish(tracker, study, space)

    child = runs_of(client, tracker)[1][0]
    steps = steps_of(client, child, "system/cpu_utilization_percentage")
    assert steps and steps == list(range(len(steps)))
    assert "system/system_memory_usage_megabytes" in child.data.metrics


def reporting(params, reporter):
    """A plain objective: 30 reported steps; trial 1 prunes itself, trial 2 fails."""
    for step in range(1, 31):
        reporter.report(step, {"loss": params["y"] + 1 / step, "val_loss": params["y"] + 2 / step})
    if reporter.number == 1:
        raise TrialPruned("pruned by the objective")
    if reporter.number == 2:
        raise RuntimeError("diverged")
    return params["y"]


def test_a_real_random_search_in_two_workers_is_tracked_whole(
    make_space, run_search, tracker_for, client
):
    tracker = tracker_for()
    result = run_search(make_space("random", trials=4), reporting, tracker=tracker, parallel=2)
    parents, children = runs_of(client, tracker)
    assert len(parents) == 1 and sorted(children) == [t.number for t in result.trials]
    status = {n: c.info.status for n, c in children.items()}
    assert status[1] == "FINISHED" and status[2] == "FAILED"
    assert children[1].data.tags["hpo.state"] == "pruned"
    assert {s for n, s in status.items() if n not in (1, 2)} == {"FINISHED"}
    for child in children.values():
        assert steps_of(client, child, "val_loss") == list(range(1, 31))
    assert parents[0].info.status == "FINISHED"
    assert parents[0].data.metrics["study_best_val_loss"] == result.best.value


def test_a_resumed_study_with_a_new_best_keeps_its_best_params_and_updates_the_tags(
    make_space, tracker_for, client, tmp_path
):
    space = make_space("random", trials=2)
    first = tracker_for()
    study, _ = begin(first, space, tmp_path)
    run_trial(first, study, 0, value=3.0, params={"lr": 0.1, "y": 0.1})
    finish(first, study, space)

    second = tracker_for()
    study, _ = begin(second, space, tmp_path, resume=True)
    run_trial(second, study, 1, value=1.0, params={"lr": 0.01, "y": 0.2})
    finish(second, study, space)

    parent = client.get_run(first.parent_run_id)
    # MLflow params never change: the first best stays (a rejected batch would lose the rest)
    assert parent.data.params["best.lr"] == "0.1"
    assert parent.data.tags["hpo.best.lr"] == "0.01" and parent.data.tags["hpo.best_trial"] == "1"
    assert parent.data.metrics["study_best_val_loss"] == 1.0
    assert parent.info.status == "FINISHED" and second.delivered
