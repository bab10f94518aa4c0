"""The contract every driver keeps: same space, same objective, same outputs.

To add a driver (e.g. ray), give it a row in BUDGETS: the tests then run it too.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import pytest
import yaml

from hpo.drivers import available_drivers
from hpo.study import read_study

# driver -> (trials, tolerance): the best of `trials` trials is within `tolerance` of the
# minimum (0) of the bowl f = (log10(lr) + 3)^2 + (y - 0.3)^2, with seed 0.
BUDGETS = {
    "random": (30, 0.25),
    "optuna": (30, 0.1),
    "bo": (12, 0.05),
    "ray": (30, 0.25),
}
# Ray starts a local cluster: a service, deselected with -m "not service".
DRIVERS = [
    pytest.param(d, marks=pytest.mark.service) if d == "ray" else d for d in available_drivers()
]


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster for the module: the driver uses a running one and leaves it up."""
    import ray

    paths = os.pathsep.join(p for p in sys.path if p)
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": paths}},
    )
    yield
    ray.shutdown()


@pytest.fixture(autouse=True)
def ray_for_the_ray_driver(request):
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("driver") == "ray":
        request.getfixturevalue("ray_cluster")


SUMMARY_KEYS = {
    "study",
    "driver",
    "objective",
    "best_value",
    "best_params",
    "best_trial",
    "n_trials",
    "total_steps",
    "wall_seconds",
}
TRIAL_KEYS = {"number", "params", "state", "value", "reason", "duration", "steps"}


def bowl(params, reporter):
    """The cheap objective with a known optimum; it also writes what the runner would."""
    value = (math.log10(params["lr"]) + 3) ** 2 + (params["y"] - 0.3) ** 2
    for step in (1, 2):
        reporter.report(step, {"val_loss": value + 1.0 / step})
    (reporter.dir / "checkpoints").mkdir()
    (reporter.dir / "checkpoints" / "best.pt").write_text(str(reporter.number))
    (reporter.dir / "config.yaml").write_text(yaml.safe_dump(params))
    (reporter.dir / "result.json").write_text(json.dumps({"best_value": value}))
    return {"val_loss": value, "val_accuracy": 0.5}


@pytest.mark.parametrize("driver", DRIVERS)
def test_driver_gets_near_the_optimum_and_writes_the_common_layout(driver, make_space, run_search):
    trials, tolerance = BUDGETS[driver]
    result = run_search(make_space(driver, trials=trials), bowl)

    assert result.count("complete") == trials
    assert result.best.value < tolerance
    study = Path(result.dir)
    summary = json.loads((study / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["driver"] == driver and summary["best_trial"] == result.best.number
    assert summary["objective"] == {"metric": "val_loss", "direction": "minimize"}
    assert summary["n_trials"] == {"complete": trials, "pruned": 0, "failed": 0, "interrupted": 0}
    assert summary["total_steps"] == 2 * trials
    assert yaml.safe_load((study / "best_params.yaml").read_text()) == result.best.params
    for number in range(trials):
        trial = json.loads((study / "trials" / str(number) / "trial.json").read_text())
        assert TRIAL_KEYS <= set(trial) and trial["state"] == "complete"
    best = study / "best"
    assert (best / "best.pt").read_text() == str(result.best.number)
    assert yaml.safe_load((best / "config.yaml").read_text()) == result.best.params
    assert (best / "result.json").is_file()
    assert read_study(study).counts["complete"] == trials


@pytest.mark.parametrize("driver", DRIVERS)
def test_seeded_sequential_runs_repeat_the_same_params(driver, make_space, run_search):
    # Three random start-up trials, then model-based ones, which are compared too.
    startup = {"optuna": {"n_startup_trials": 3}, "bo": {"init_points": 3}}.get(driver, {})
    space = make_space(driver, trials=6, **startup)
    first = run_search(space, bowl, name="first")
    second = run_search(space, bowl, name="second")
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    assert len({t.params["lr"] for t in first.trials}) == 6


def conditional(params, reporter):
    """Fails the trial unless momentum is present exactly when the optimizer is sgd."""
    if ("momentum" in params) != (params["optim"] == "sgd"):
        raise AssertionError(f"momentum with {params['optim']}")
    if ("beta2" in params) != (params["optim"] == "adamw"):
        raise AssertionError(f"beta2 with {params['optim']}")
    return params["lr"]


CONDITIONAL = {
    "optim": {"type": "categorical", "choices": ["adamw", "sgd"]},
    "lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optim": "sgd"}},
    "beta2": {"type": "float", "low": 0.9, "high": 0.999, "when": {"optim": "adamw"}},
}


@pytest.mark.parametrize("driver", DRIVERS)
def test_conditional_param_is_sampled_only_with_its_condition(driver, make_space, run_search):
    # bo: 4 random trials, then 4 from its Gaussian process (which sees every param).
    options = {"init_points": 4} if driver == "bo" else {}
    result = run_search(make_space(driver, CONDITIONAL, trials=8, **options), conditional)
    assert [t.reason for t in result.trials if t.state == "failed"] == []
    assert {t.params["optim"] for t in result.trials} == {"adamw", "sgd"}


def flaky(params, reporter):
    """Trial 1 raises, trial 2 returns NaN, trial 3 returns nothing usable; others are fine."""
    if reporter.number == 1:
        raise RuntimeError("CUDA out of memory (simulated)")
    if reporter.number == 2:
        return float("nan")
    if reporter.number == 3:
        return {"val_accuracy": 0.9}
    return params["y"]


@pytest.mark.parametrize("driver", DRIVERS)
def test_failed_and_nan_trials_do_not_count_and_record_no_value(driver, make_space, run_search):
    result = run_search(make_space(driver, trials=5), flaky)
    reasons = {t.number: t.reason for t in result.trials if t.state == "failed"}
    assert reasons == {
        1: "RuntimeError: CUDA out of memory (simulated)",
        2: "val_loss is nan",
        3: "the objective's result has no 'val_loss' (it has: val_accuracy)",
    }
    assert result.count("complete") == 5
    assert all(t.value is None for t in result.trials if t.state == "failed")
    assert json.loads((result.dir / "trials" / "2" / "trial.json").read_text())["value"] is None
    assert "RuntimeError" in (result.dir / "trials" / "1" / "traceback.txt").read_text()


def always_fails(params, reporter):
    raise ValueError("bad batch")


@pytest.mark.parametrize("driver", DRIVERS)
def test_a_study_whose_trials_all_fail_stops_and_says_why(driver, make_space, run_search):
    result = run_search(make_space(driver, trials=3), always_fails)
    assert result.count("failed") == 3 and result.best is None
    assert result.stop_reason == "failures" and result.first_failure == "ValueError: bad batch"


@pytest.mark.parametrize("driver", DRIVERS)
def test_existing_study_needs_resume(driver, make_space, run_search):
    space = make_space(driver, trials=2)
    run_search(space, bowl)
    with pytest.raises(Exception, match="already exists .* pass --resume"):
        run_search(space, bowl)
    assert run_search(space.with_budget(trials=3), bowl, resume=True).count("complete") == 3


@pytest.mark.parametrize("driver", DRIVERS)
def test_enqueued_params_run_first(driver, make_space, run_search):
    enqueue = ({"lr": 1e-3, "y": 0.3},)
    result = run_search(make_space(driver, trials=2), bowl, enqueue=enqueue)
    assert result.trials[0].params == {"lr": 1e-3, "y": 0.3}
    assert result.best.number == 0 and result.best.value == pytest.approx(0.0)
