"""The Optuna driver: pruning, samplers, pruners, grid, several objectives, storage."""

from __future__ import annotations

import importlib.util
import statistics

import optuna
import pytest

from hpo.drivers.base import TrialPruned
from hpo.drivers.optuna_driver import PRUNERS, SAMPLERS
from hpo.suggesters.optuna_pruners import AUTO_PRUNER, pruner_name, pruner_settings
from hpo.suggesters.optuna_samplers import make_sampler

STEPS = 10
CURVE = {"y": {"type": "float", "low": 0.0, "high": 1.0}}


def learning_curve(params, reporter):
    """val_loss = y + 1/step: a trial with a larger y has a worse curve at every step."""
    for step in range(1, STEPS + 1):
        reporter.report(step, {"val_loss": params["y"] + 1.0 / step, "loss": 9.0})
        if reporter.should_stop():
            raise TrialPruned(f"pruned at step {step}")
    return params["y"] + 1.0 / STEPS


def journal_study(result):
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(result.dir / "optuna.journal"))
    )
    return optuna.load_study(study_name=result.study, storage=storage)


def test_trials_with_clearly_worse_curves_stop_early_and_end_pruned(make_space, run_search):
    space = make_space(
        "optuna",
        CURVE,
        trials=16,
        sampler="random",
        pruner="median",
        pruner_startup_trials=3,
        n_warmup_steps=1,
    )
    result = run_search(space, learning_curve)

    pruned = [t for t in result.trials if t.state == "pruned"]
    complete = [t for t in result.trials if t.state == "complete"]
    assert len(pruned) >= 4 and all(t.steps < STEPS for t in pruned)
    assert all(t.steps == STEPS for t in complete)
    assert statistics.mean(t.params["y"] for t in pruned) > statistics.mean(
        t.params["y"] for t in complete
    )
    assert result.best.state == "complete"
    assert result.summary()["total_steps"] < 16 * STEPS
    states = [t.state for t in journal_study(result).trials]
    assert states.count(optuna.trial.TrialState.PRUNED) == len(pruned)


@pytest.mark.parametrize("pruner", [p for p in PRUNERS if p != "auto"])
def test_every_pruner_runs_a_study(make_space, run_search, pruner):
    space = make_space(
        "optuna", CURVE, trials=6, sampler="random", pruner=pruner, pruner_startup_trials=2
    )
    result = run_search(space, learning_curve)
    assert result.count("complete") + result.count("pruned") == 6
    assert result.count("failed") == 0


def test_tpe_under_the_auto_pruner_starts_its_model_after_five_random_trials(make_space):
    from hpo.suggesters.optuna_samplers import (
        PRUNED_TPE_STARTUP_TRIALS,
        STARTUP_TRIALS,
        startup_trials,
    )

    assert (PRUNED_TPE_STARTUP_TRIALS, STARTUP_TRIALS) == (5, 10)
    assert startup_trials(make_space("optuna", CURVE)) == 5  # every option left to auto
    assert startup_trials(make_space("optuna", CURVE, sampler="tpe", pruner="auto")) == 5
    # no pruning, another pruner chosen by hand, or a model other than TPE: Optuna's 10
    assert startup_trials(make_space("optuna", CURVE, pruner="none")) == 10
    assert startup_trials(make_space("optuna", CURVE, pruner="median")) == 10
    assert startup_trials(make_space("optuna", CURVE, sampler="gp")) == 10
    assert startup_trials(make_space("optuna", CURVE, sampler="cmaes")) == 10
    # a number given by the user always wins
    assert startup_trials(make_space("optuna", CURVE, n_startup_trials=7)) == 7
    assert startup_trials(make_space("optuna", CURVE, pruner="none", n_startup_trials=3)) == 3
    # and it is what the sampler is built with
    sampler = make_sampler(make_space("optuna", CURVE), parallel=1)
    assert sampler._n_startup_trials == 5


def test_auto_pruner_prunes_nothing_under_gp_and_an_explicit_one_warns(
    make_space, run_search, caplog
):
    # GPSampler fits only complete trials: pruned ones would be proposed again
    assert pruner_name(make_space("optuna", CURVE, sampler="tpe")) == AUTO_PRUNER
    assert pruner_name(make_space("optuna", CURVE, sampler="gp")) == "none"
    explicit = make_space(
        "optuna", CURVE, trials=2, sampler="gp", pruner="median", n_startup_trials=5
    )
    assert pruner_name(explicit) == "median"
    result = run_search(explicit, learning_curve)
    assert result.count("complete") == 2
    assert any("sampler gp with pruner median" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_a_step_budget_buys_more_trials_when_pruning_saves_steps(make_space, run_search):
    budget = 12 * STEPS  # twelve full trials' worth of steps

    def study(pruner):  # trials: 1, then --max-steps-total alone replaces the trial count
        space = make_space(
            "optuna", CURVE, trials=1, sampler="random", pruner=pruner, pruner_startup_trials=3
        )
        return space.with_budget(max_steps_total=budget)

    unpruned = run_search(study("none"), learning_curve, name="unpruned")
    pruned = run_search(study("median"), learning_curve, name="pruned")

    assert [t.state for t in unpruned.trials] == ["complete"] * 12
    assert unpruned.summary()["total_steps"] == budget
    assert pruned.count("pruned") >= 3 and len(pruned.trials) > 12
    # stops once the steps reach the budget; the last trial it started may overshoot it
    assert budget <= pruned.summary()["total_steps"] < budget + STEPS
    assert pruned.stop_reason == unpruned.stop_reason == "budget"


def always_fails(params, reporter):
    reporter.report(1, {"val_loss": 1.0})
    raise RuntimeError("diverged")


def test_a_step_budget_without_a_trial_count_ends_after_failures_in_a_row(make_space, run_search):
    from hpo.trial_book import FAILURES_IN_A_ROW

    space = make_space("optuna", CURVE, trials=1, sampler="random")
    result = run_search(space.with_budget(max_steps_total=10**6), always_fails)
    assert result.stop_reason == "failures"
    assert result.count("failed") == FAILURES_IN_A_ROW


SLOW_STEPS = 25  # the default's first rung: 12% of them, 3 steps, past the curves' crossing


def slow_starter(params, reporter):
    """Crossing curves (at step 1.8): a larger y starts worse (step 1: 1 + 0.8y) and ends
    better (1 - 0.93y)."""
    y = params["y"]
    for step in range(1, SLOW_STEPS + 1):
        reporter.report(step, {"val_loss": 1 - y + 1.8 * y / step})
        if reporter.should_stop():
            raise TrialPruned(f"pruned at step {step}")
    return 1 - y + 1.8 * y / SLOW_STEPS


def test_the_default_pruner_keeps_slow_starters_that_the_median_pruner_stops(
    make_space, run_search
):
    def study(pruner):
        space = make_space("optuna", CURVE, trials=30, sampler="random", pruner=pruner)
        return space.with_budget(max_steps=SLOW_STEPS)

    default, median = study("auto"), study("median")
    assert pruner_name(default) == AUTO_PRUNER == "hyperband"
    settings = {"min_resource": 3, "max_resource": SLOW_STEPS, "reduction_factor": 3}
    assert pruner_settings(default) == settings
    kept = run_search(default, slow_starter, name="default", storage="memory")
    stopped = run_search(median, slow_starter, name="median", storage="memory")
    assert kept.count("pruned") >= 10  # it prunes, and still finds the late bloomers
    assert kept.best.params["y"] > stopped.best.params["y"]
    assert kept.best.value < stopped.best.value - 0.1  # seeds 0-2: 0.21-0.30 vs 0.41-0.55


@pytest.mark.parametrize("pruner", ["auto", "successive_halving", "hyperband"])
def test_without_max_steps_the_first_rung_comes_from_the_first_complete_trial(
    make_space, run_search, pruner
):
    import pickle

    from hpo.suggesters.optuna_pruners import MIN_RESOURCE_FRACTION, make_pruner

    space = make_space("optuna", CURVE, trials=30, sampler="random", pruner=pruner)
    assert space.budget.max_steps is None
    settings = pruner_settings(space)
    assert settings["min_resource_fraction"] == MIN_RESOURCE_FRACTION
    result = run_search(space, slow_starter, storage="memory")
    # nothing is pruned before a trial completes; then not before the first rung
    first_rung = max(1, round(SLOW_STEPS * MIN_RESOURCE_FRACTION))
    first_complete = next(t.number for t in result.trials if t.state == "complete")
    pruned = [t for t in result.trials if t.state == "pruned"]
    assert len(pruned) >= 5
    assert all(t.number > first_complete and t.steps >= first_rung for t in pruned)
    # Ray keeps its searcher, and the study and pruner in it, with plain pickle
    restored = pickle.loads(pickle.dumps(make_pruner(space)))
    assert restored.min_resource_fraction == MIN_RESOURCE_FRACTION


def bowl(params, reporter):
    return (params["x"] - 0.5) ** 2 + (params.get("n", 0) - 2) ** 2


SAMPLER_SPACE = {
    "x": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25},
    "n": {"type": "int", "low": 0, "high": 4},
}


@pytest.mark.parametrize(
    "sampler",
    [
        pytest.param(s, marks=pytest.mark.slow) if s == "gp" else s  # gp imports torch: seconds
        for s in SAMPLERS
        if s not in ("auto", "grid")
    ],
)
def test_every_sampler_runs_a_study(make_space, run_search, sampler):
    if sampler == "cmaes" and importlib.util.find_spec("cmaes") is None:
        pytest.skip("the cmaes package is not installed")
    space = make_space("optuna", SAMPLER_SPACE, trials=5, sampler=sampler, n_startup_trials=3)
    result = run_search(space, bowl)
    assert result.count("complete") == 5


@pytest.mark.slow
def test_grid_runs_each_point_once_then_stops(make_space, run_search):
    space = make_space("optuna", SAMPLER_SPACE, trials=None, sampler="grid")
    result = run_search(space, bowl)
    points = {(t.params["x"], t.params["n"]) for t in result.trials}
    assert len(result.trials) == len(points) == 5 * 5
    assert result.stop_reason == "exhausted" and result.best.value == 0.0


def two_metrics(params, reporter):
    return {"val_loss": params["x"], "val_accuracy": params["x"] ** 0.5 - params.get("n", 0)}


def test_several_objectives_use_nsga2_and_report_a_pareto_front(make_space, run_search):
    objectives = [{"metric": "val_loss"}, {"metric": "val_accuracy", "direction": "maximize"}]
    space = make_space("optuna", SAMPLER_SPACE, trials=8, objective=objectives)
    assert isinstance(make_sampler(space, parallel=1), optuna.samplers.NSGAIISampler)
    result = run_search(space, two_metrics)
    assert journal_study(result).directions == [
        optuna.study.StudyDirection.MINIMIZE,
        optuna.study.StudyDirection.MAXIMIZE,
    ]
    assert result.pareto_front and result.best.number in result.pareto_front
    assert all(len(t.values) == 2 for t in result.trials)
    summary = result.summary()
    assert summary["objective"] == {"metric": "val_loss", "direction": "minimize"}
    assert summary["best_values"] == result.best.values


def test_tpe_uses_constant_liar_only_when_trials_run_in_parallel(make_space):
    space = make_space("optuna")
    assert make_sampler(space, parallel=1)._constant_liar is False
    assert make_sampler(space, parallel=4)._constant_liar is True


@pytest.mark.skipif(importlib.util.find_spec("sqlalchemy") is None, reason="needs sqlalchemy")
@pytest.mark.slow
def test_a_database_url_holds_the_study_and_a_rerun_resumes_it(make_space, run_search, tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    run_search(make_space("optuna", trials=3), bowl_xy, storage=url)
    result = run_search(make_space("optuna", trials=5), bowl_xy, storage=url, resume=True)
    assert result.count("complete") == 5
    stored = optuna.load_study(study_name="s", storage=url)
    assert len(stored.trials) == 5 and not (tmp_path / "runs" / "s" / "optuna.journal").exists()


def bowl_xy(params, reporter):
    return params["y"]


def test_memory_storage_cannot_resume(make_space, run_search):
    run_search(make_space("optuna", trials=2), bowl_xy, storage="memory")
    with pytest.raises(Exception, match="memory keeps nothing to resume"):
        run_search(make_space("optuna", trials=3), bowl_xy, storage="memory", resume=True)
