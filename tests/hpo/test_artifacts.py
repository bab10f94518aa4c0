"""Study plots drawn from a study's folder (whatever driver wrote it) and logged to its run."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from test_model_registry import sqlite_store

from hpo.drivers import get_driver
from hpo.drivers.base import StudySpec, TrialPruned
from hpo.space import space_from_dict
from hpo.study import load_trials
from hpo.tracking.artifacts import (
    learning_curves_figure,
    log_study_artifacts,
    read_curves,
    write_study_plots,
)
from runner.errors import UserInputError
from runner.metrics_log import MetricsLog

pytest.importorskip("optuna")
pytest.importorskip("plotly")

PARAMS = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "y": {"type": "float", "low": 0.0, "high": 1.0},  # a low of 0: study.yaml leaves it out
    "layers": {"type": "int", "low": 1, "high": 4},
    "optim": {"type": "categorical", "choices": ["adamw", "sgd"]},
    "clip": 1.0,  # fixed: never plotted as a searched param
}
PNG = b"\x89PNG\r\n\x1a\n"


def curves(params, reporter):
    """Writes metrics.jsonl as the runner does: train loss and val_loss at steps 10, 20, 30.
    Large y fails, large lr is pruned after its first evaluation."""
    log = MetricsLog(Path(reporter.dir) / "metrics.jsonl")
    try:
        for step in (10, 20, 30):
            val = (math.log10(params["lr"]) + 3) ** 2 + (params["y"] - 0.3) ** 2 + 10 / step
            log.write("train", step, loss=val + 0.5, lr=params["lr"])
            log.write("eval", step, val_loss=val, val_perplexity=math.exp(min(val, 20)))
            reporter.report(step, {"val_loss": val})
            if params["lr"] > 1e-2:
                raise TrialPruned("too fast")
            if params["y"] > 0.85:
                raise RuntimeError("diverged")
        return val
    finally:
        log.close()


def plain(params, reporter):
    """A plain-function objective: a value, no metrics.jsonl."""
    return (params["y"] - 0.3) ** 2


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A real random search of `curves` (10 trials: complete, pruned and failed ones) and the
    plots drawn from its folder, once for the module: drawing takes seconds."""
    space = space_from_dict(
        {
            "objective": "val_loss",
            "budget": {"trials": 10},
            "driver": {"seed": 0},
            "params": PARAMS,
        },
        source="space.yaml",
        driver="random",
    )
    spec = StudySpec.for_space(space, runs=tmp_path_factory.mktemp("runs"), quiet=True)
    result = get_driver("random").run(space, spec, curves)
    assert {t.state for t in result.trials} == {"complete", "pruned", "failed"}
    return result, {p.name: p for p in write_study_plots(result.dir)}


@pytest.mark.slow
def test_every_plot_is_drawn_for_a_study_with_complete_pruned_and_failed_trials(study):
    study, written = study

    for name in (
        "optimization_history",
        "param_importances",
        "parallel_coordinate",
        "slice",
        "learning_curves",
    ):
        assert written[f"{name}.png"].read_bytes().startswith(PNG), name
        assert written[f"{name}.png"].stat().st_size > 5000, f"{name}.png looks empty"
    assert all(p.parent == study.dir / "plots" for p in written.values())
    html = written["study.html"].read_text()
    assert html.count("plotly.js v") == 1  # embedded once: the page opens offline
    for title in (
        "optimization history",
        "param importances",
        "parallel coordinate",
        "slice",
        "learning curves",
    ):
        assert f"<h2>{title}</h2>" in html
    assert "skipped.txt" not in written


def test_learning_curves_use_mlflow_metric_names_and_mark_a_single_evaluation(study):
    import matplotlib.pyplot as plt

    study, _ = study
    records = load_trials(study.dir)
    figure = learning_curves_figure(read_curves(study.dir, records), records, "val_loss")
    try:
        # the runs log the train loss as `loss` in MLflow: the panel says so, not train_loss
        assert [ax.get_ylabel() for ax in figure.axes] == ["val_loss", "loss"]
        lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
        pruned = [r.number for r in records if r.state == "pruned"]
        assert pruned, "the study has no trial pruned at its first evaluation"
        for number in pruned:  # one evaluation: one marker, where a bare line draws nothing
            line = lines[f"#{number} pruned"]
            assert len(line.get_xdata()) == 1 and line.get_marker() == "o"
        complete = next(r.number for r in records if r.state == "complete")
        assert list(lines[f"#{complete} complete"].get_xdata()) == [10, 20, 30]
    finally:
        plt.close(figure)


def test_interactive_learning_curves_hold_a_line_per_complete_or_pruned_trial(study):
    study, written = study
    html = written["study.html"].read_text()
    learning = html[html.index("<h2>learning curves</h2>") :]
    for trial in study.trials:  # the PNG has the failed ones too; Optuna's plot leaves them out
        line = f'"name":"Trial{trial.number}"'
        assert (line in learning) == (trial.state in ("complete", "pruned")), trial.state


@pytest.mark.slow
def test_a_one_trial_study_skips_importances_with_the_reason_and_draws_the_rest(
    make_space, run_search
):
    result = run_search(make_space("random", params=PARAMS, trials=1), plain)
    names = {p.name for p in write_study_plots(result.dir)}

    assert "optimization_history.png" in names and "slice.png" in names
    assert "param_importances.png" not in names and "learning_curves.png" not in names
    skipped = (result.dir / "plots" / "skipped.txt").read_text()
    assert "param_importances: needs 2 complete trials, the study has 1" in skipped
    assert "learning_curves: no trial wrote metrics.jsonl" in skipped


@pytest.mark.slow
def test_plots_and_study_files_are_logged_to_the_study_run(study, tmp_path_factory, tmp_path):
    study, written = study
    client, experiment = sqlite_store(tmp_path_factory.getbasetemp(), tmp_path)
    run_id = client.create_run(experiment).info.run_id

    logged = log_study_artifacts(client, run_id, study.dir, plots=list(written.values()))

    root = {a.path for a in client.list_artifacts(run_id)}
    plots = {a.path for a in client.list_artifacts(run_id, "plots")}
    assert {"study.yaml", "summary.json", "history.csv", "best_params.yaml"} <= root
    assert {"plots/learning_curves.png", "plots/param_importances.png", "plots/study.html"} <= plots
    assert set(logged) == (root - {"plots"}) | plots


def test_a_folder_without_study_yaml_is_a_user_error(tmp_path):
    with pytest.raises(UserInputError, match="study.yaml not found"):
        write_study_plots(tmp_path)
