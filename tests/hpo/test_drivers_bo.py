"""The bayes_opt driver: typed coordinates, one negation, nothing failed registered, ConstantLiar."""

from __future__ import annotations

import json
import math

import pytest

from hpo.drivers.base import StudySpec
from hpo.drivers.bo_driver import OBSERVATIONS, BayesOptSuggester

MIXED = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1},
    "batch": {"type": "int", "low": 8, "high": 64, "step": 8},
    "optim": {"type": "categorical", "choices": ["adamw", "sgd"]},
    "only": {"type": "categorical", "choices": ["x"]},
}


def test_log_params_are_searched_in_log10_and_discrete_ones_as_typed_params(make_space, tmp_path):
    # Imported here: worker processes import this module for its objectives, and stay light.
    from bayes_opt.acquisition import ConstantLiar, ExpectedImprovement
    from bayes_opt.parameter import CategoricalParameter, FloatParameter, IntParameter

    space = make_space("bo", MIXED, acquisition="ei")
    suggester = BayesOptSuggester(space, StudySpec("s", tmp_path, parallel=2), previous=())
    params = suggester.optimizer.space._params_config
    assert isinstance(params["lr"], FloatParameter)
    assert tuple(params["lr"].bounds) == (-5.0, -1.0)
    assert isinstance(params["dropout"], IntParameter) and tuple(params["dropout"].bounds) == (0, 3)
    assert isinstance(params["batch"], IntParameter) and tuple(params["batch"].bounds) == (0, 7)
    assert isinstance(params["optim"], CategoricalParameter) and "only" not in params
    acquisition = suggester.optimizer.acquisition_function
    assert isinstance(acquisition, ConstantLiar)
    assert isinstance(acquisition.base_acquisition, ExpectedImprovement)
    values = suggester.ask().params
    assert values["dropout"] in (0.0, 0.1, 0.2, 0.3) and values["batch"] % 8 == 0
    assert values["only"] == "x" and 1e-5 <= values["lr"] <= 1e-1


def test_bayes_opt_coordinates_go_back_to_the_same_params(make_space):
    # moved from test_ray_tune_parts.py: searcher bayesopt now runs this same encoding, where a
    # choice is its index (bayes_opt's categorical parameter), no longer the middle of a unit
    # interval (1.5 for the second choice) as Ray's own encoding had it
    from hpo.suggesters.bayes_opt import BayesOpt

    params = {
        "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
        "layers": {"type": "int", "low": 1, "high": 4},
        "act": {"type": "categorical", "choices": ["relu", "gelu", "tanh"]},
    }
    bayes = BayesOpt(make_space("bo", params), parallel=1)
    coords = bayes._to_point({"lr": 1e-3, "layers": 3, "act": "gelu"})
    assert coords["act"] == 1  # the index of its choice
    back = bayes._to_values(coords)
    assert back["layers"] == 3 and back["act"] == "gelu"
    assert abs(back["lr"] - 1e-3) < 1e-12


def peak(params, reporter):
    """A maximum of 0 at lr = 1e-3, y = 0.3; trial 1 is NaN and must not be registered."""
    if reporter.number == 1:
        return {"val_accuracy": float("nan")}
    return {"val_accuracy": -((math.log10(params["lr"]) + 3) ** 2 + (params["y"] - 0.3) ** 2)}


@pytest.mark.slow
def test_a_maximized_objective_is_maximized_and_nan_is_never_registered(make_space, run_search):
    space = make_space(
        "bo",
        trials=10,
        init_points=4,
        objective={"metric": "val_accuracy", "direction": "maximize"},
    )
    result = run_search(space, peak)
    assert result.best.value > -0.1
    saved = json.loads((result.dir / OBSERVATIONS).read_text())["observations"]
    complete = {t.number: t.value for t in result.trials if t.state == "complete"}
    assert {o["number"]: o["value"] for o in saved} == complete and 1 not in complete


def y_only(params, reporter):
    return params["y"]


@pytest.mark.slow
def test_parallel_trials_get_distinct_suggestions_from_the_constant_liar(make_space, run_search):
    result = run_search(make_space("bo", trials=6, init_points=2), y_only, parallel=2)
    points = [(t.params["lr"], t.params["y"]) for t in result.trials]
    assert len(set(points)) == len(points) == 6
    assert result.best.value == pytest.approx(min(p[1] for p in points))


def test_the_constant_liar_suggests_over_int_and_categorical_params(make_space, tmp_path):
    # bayes_opt 3.4's ConstantLiar copied the space as floats: with a choice in the space, its
    # first model suggestion under --parallel 2 failed ("cannot reshape array"), locally and on Ray
    from hpo.drivers.base import TrialRecord

    space = make_space("bo", MIXED, init_points=2)
    suggester = BayesOptSuggester(space, StudySpec("s", tmp_path, parallel=2), previous=())
    for _ in range(2):  # the random ones, told complete
        suggestion = suggester.ask()
        value = math.log10(suggestion.params["lr"]) ** 2 + suggestion.params["batch"] / 64
        record = TrialRecord(suggestion.number, suggestion.params, "complete", values=[value])
        suggester.tell(suggestion, record)
    pending = [suggester.ask(), suggester.ask()]  # from the Gaussian process, two at once
    assert [s.number for s in pending] == [2, 3]
    for suggestion in pending:
        assert suggestion.params["batch"] % 8 == 0
        assert suggestion.params["optim"] in ("adamw", "sgd")
