"""MLflow's compare view and optuna-dashboard of a real tracked study, in headless Chromium.

What a user sees: selecting a study's trials in `mlflow ui` and pressing Compare lists the
searched params and the objective. Skips, saying what is missing, where no browser can be
driven (tests/hpo/browser.py). With HPO_SCREENSHOTS=DIR the pages are also saved there as PNG
(docs/ holds the README's).
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from browser import (
    browser_or_skip,
    missing,
    save_screenshot,
    start_optuna_dashboard,
    stop,
    wait_for_text,
)

pytestmark = [pytest.mark.service, pytest.mark.slow]

PARAMS = {
    "train.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "train.weight_decay": {"type": "float", "low": 0.0, "high": 0.2},
}


def bowl(params, reporter):
    """A plain objective with a learning curve: val_loss falls towards a bowl's value."""
    import math

    floor = (math.log10(params["train.learning_rate"]) + 2.5) ** 2 + params["train.weight_decay"]
    for step in (5, 10, 15):
        reporter.report(step, {"loss": floor + 3 / step, "val_loss": floor + 2 / step})
    return floor + 2 / 15


def compare_url(uri: str, experiment_id: str, run_ids: list[str]) -> str:
    """MLflow's compare view of these runs (what Compare opens after selecting them)."""
    query = urllib.parse.urlencode(
        {"runs": json.dumps(run_ids), "experiments": json.dumps([experiment_id])}
    )
    return f"{uri}/#/compare-runs?{query}"


def screenshot_dir() -> Path | None:
    folder = os.environ.get("HPO_SCREENSHOTS")
    return Path(folder) if folder else None


@pytest.fixture(scope="module")
def tracked_study(tmp_path_factory):
    """A 4-trial Optuna study tracked on the shared mlflow server; (server, study result)."""
    if missing():
        pytest.skip(missing())
    from mlflow_server import shared_server

    from hpo.drivers import get_driver
    from hpo.drivers.base import StudySpec
    from hpo.space import space_from_dict
    from hpo.tracking import MlflowTracker

    server = shared_server()
    space = space_from_dict(
        {
            "objective": "val_loss",
            "budget": {"trials": 4},
            "driver": {"seed": 0, "sampler": "random"},
            "params": PARAMS,
        },
        source="lr_wd.yaml",
        driver="optuna",
    )
    runs = tmp_path_factory.mktemp("browser") / "runs"
    study = StudySpec.for_space(space, name="lr_wd", runs=runs, quiet=True)
    tracker = MlflowTracker(
        server.uri, experiment_name="browser-lr_wd", system_metrics=False, flush_interval=0.2
    )
    result = get_driver("optuna").run(space, study, bowl, tracker)
    return server, tracker, result


def test_the_compare_view_lists_the_searched_params_and_the_objective(tracked_study):
    server, tracker, result = tracked_study
    from mlflow.tracking import MlflowClient

    client = MlflowClient(server.uri)
    children = client.search_runs(
        [tracker.experiment_id], f"tags.mlflow.parentRunId = '{tracker.parent_run_id}'"
    )
    assert len(children) == 4
    driver = browser_or_skip(1400, 1000)
    try:
        driver.get(
            compare_url(server.uri, tracker.experiment_id, [r.info.run_id for r in children])
        )
        body = wait_for_text(
            driver, ["Comparing 4 Runs", "train.learning_rate", "train.weight_decay", "val_loss"]
        )
        # each trial's value of the searched params is on the page, as logged (plain numbers)
        for run in children:
            assert run.data.params["train.learning_rate"] in body
        # the trials' metrics, never the study's own (named study_*), and no Python reprs
        assert "best_val_loss" in body and "study_best_val_loss" not in body
        assert "None" not in body.split("Parameters", 1)[-1].split("Metrics", 1)[0]
        if screenshot_dir():
            save_screenshot(driver, screenshot_dir() / "mlflow-compare.png")
    finally:
        driver.quit()


def test_optuna_dashboard_shows_the_study_from_its_journal(tracked_study):
    _, _, result = tracked_study
    from mlflow_server import free_port

    process = start_optuna_dashboard(str(result.dir / "optuna.journal"), free_port())
    port = process.args[-1]
    driver = browser_or_skip(1400, 1000)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=10) as r:
            (study,) = json.load(r)["study_summaries"]
        driver.get(f"http://127.0.0.1:{port}/dashboard/studies/{study['study_id']}")
        # the study's metric name labels its charts, not "Objective Value"
        wait_for_text(driver, ["lr_wd", "val_loss"], timeout=90)
        if screenshot_dir():
            save_screenshot(driver, screenshot_dir() / "optuna-dashboard.png")
    finally:
        driver.quit()
        stop(process)
