"""Space files: what a valid one means, and every bad one stopped before any trial."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest
import yaml

from hpo.drivers import DRIVERS, available_drivers, get_driver
from hpo.drivers.base import StudySpec
from hpo.space import (
    Categorical,
    Fixed,
    Float,
    Int,
    SpaceError,
    load_enqueue,
    load_space,
    space_from_dict,
)
from runner.config import check_key
from runner.errors import UserInputError

ROOT = Path(__file__).parents[2]
SHIPPED = sorted((ROOT / "experiments" / "spaces").glob("*.yaml"))

GOOD = """\
experiment: EXPERIMENT
objective: {metric: val_loss, direction: minimize}
budget: {trials: 4, max_steps: 20}
driver: {seed: 0, optuna: {sampler: tpe}}
params:
  train.learning_rate: {type: float, low: 1e-5, high: 1e-2, log: true}
""".replace("EXPERIMENT", str(ROOT / "experiments/lm_tiny.yaml"))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def never_called(params, reporter):
    raise AssertionError("no trial may start from a bad space")


def start_search(path: Path, runs: Path, driver: str = "optuna") -> None:
    """What `hpo search --space PATH` does: load and validate, then run the driver."""
    space = load_space(path, driver=driver, config_key_check=check_key)
    study = StudySpec.for_space(space, runs=runs, quiet=True)
    get_driver(driver).run(space, study, never_called)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
@pytest.mark.parametrize("driver", available_drivers())
def test_shipped_spaces_are_valid_for_every_driver(path, driver):
    space = load_space(path, driver=driver, config_key_check=check_key)
    if space.command is not None:  # a command trial runs the user's script, not an experiment
        assert space.searched and space.experiment is None and space.command.template
        return
    # experiment: is relative to the space file; loading makes it absolute
    assert space.searched and Path(space.experiment).parent == ROOT / "experiments"
    assert Path(space.experiment).is_file()


def test_shipped_spaces_include_lr_wd_classify_and_conditional():
    names = {p.stem for p in SHIPPED}
    assert {"lr_wd", "classify_wide", "optimizer_conditional"} <= names


def test_lr_wd_searches_learning_rate_and_weight_decay_on_a_log_scale():
    space = load_space(ROOT / "experiments/spaces/lr_wd.yaml", config_key_check=check_key)
    assert space.param("train.learning_rate").distribution == Float(1e-5, 1e-2, log=True)
    assert space.param("train.weight_decay").distribution == Float(1e-6, 1e-1, log=True)


def test_yaml_1e_minus_5_read_as_text_is_accepted_as_a_number(tmp_path):
    space = load_space(write(tmp_path, GOOD))
    assert space.params[0].distribution.low == 1e-5


def test_a_space_file_holds_budget_objective_driver_options_and_experiment(tmp_path):
    space = load_space(write(tmp_path, GOOD), config_key_check=check_key)
    assert space.budget.trials == 4 and space.budget.max_steps == 20
    assert space.objective.metric == "val_loss" and space.objective.direction == "minimize"
    assert space.driver_options["sampler"] == "tpe" and space.driver_options["seed"] == 0
    assert space.experiment == str(ROOT / "experiments/lm_tiny.yaml")
    # --experiment is relative to the current folder
    assert load_space(write(tmp_path, GOOD), experiment="x.yaml").experiment == str(
        Path.cwd() / "x.yaml"
    )


def test_every_kind_of_param_is_parsed():
    space = space_from_dict(
        {
            "params": {
                "a": {"type": "float", "low": 0, "high": 1, "step": 0.25},
                "b": {"type": "int", "low": 8, "high": 64, "step": 8},
                "c": {"type": "int", "low": 1, "high": 1000, "log": True},
                "d": {"choices": ["x", "y"]},
                "e": 1.0,
                "f": {"value": [1, 2]},
            }
        }
    )
    dists = {p.name: p.distribution for p in space.params}
    assert dists == {
        "a": Float(0.0, 1.0, step=0.25),
        "b": Int(8, 64, step=8),
        "c": Int(1, 1000, log=True),
        "d": Categorical(("x", "y")),
        "e": Fixed(1.0),
        "f": Fixed([1, 2]),
    }
    assert [p.name for p in space.searched] == ["a", "b", "c", "d"]


def test_conditional_params_come_after_their_parent_and_only_when_it_matches():
    space = space_from_dict(
        {
            "params": {
                "momentum": {"type": "float", "low": 0.5, "high": 0.99, "when": {"optim": "sgd"}},
                "optim": {"type": "categorical", "choices": ["adamw", "sgd"]},
                "clip": 1.0,
            }
        }
    )
    assert [p.name for p in space.params] == ["optim", "momentum", "clip"]
    assert space.trial_params({"optim": "adamw", "momentum": 0.9}) == {
        "optim": "adamw",
        "clip": 1.0,
    }
    assert space.trial_params({"optim": "sgd", "momentum": 0.9}) == {
        "optim": "sgd",
        "momentum": 0.9,
        "clip": 1.0,
    }


def test_sample_bounds_are_log10_for_log_params():
    space = space_from_dict(
        {
            "params": {
                "lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                "y": {"type": "float", "low": 0, "high": 2},
            }
        }
    )
    assert space.sample_bounds() == {"lr": (-4.0, -2.0), "y": (0.0, 2.0)}
    assert space.param("lr").distribution.from_sample(-3.0) == pytest.approx(1e-3)


def test_stepped_values_carry_no_float_noise():
    assert [Float(0.0, 0.3, step=0.1).value_at(i) for i in range(4)] == [0.0, 0.1, 0.2, 0.3]


def test_resolved_space_reads_back_as_the_same_space(tmp_path):
    space = load_space(ROOT / "experiments/spaces/optimizer_conditional.yaml")
    raw = space.to_dict()
    raw["driver"].pop("name")
    again = space_from_dict(raw, source=space.source)
    assert again == space


def test_budget_can_be_overridden_from_the_command_line():
    space = space_from_dict({"params": {"x": {"type": "float", "low": 0, "high": 1}}})
    changed = space.with_budget(trials=3, timeout=60)
    assert changed.budget == dataclasses.replace(space.budget, trials=3, timeout=60.0)
    assert space.with_seed(7).driver_options["seed"] == 7
    with pytest.raises(SpaceError, match="--trials"):
        space.with_budget(trials=0)


def test_a_step_budget_alone_replaces_the_trial_count():
    params = {"x": {"type": "float", "low": 0, "high": 1}}
    alone = space_from_dict({"params": params, "budget": {"max_steps_total": 500}}).budget
    assert (alone.trials, alone.max_steps_total) == (None, 500)
    both = {"trials": 9, "max_steps_total": 500}
    assert space_from_dict({"params": params, "budget": both}).budget.trials == 9
    space = space_from_dict({"params": params, "budget": {"max_steps": 50}})
    assert space.with_budget(max_steps_total=500).budget.trials is None  # --max-steps-total
    assert space.with_budget(trials=3, max_steps_total=500).budget.trials == 3
    with pytest.raises(SpaceError, match="--max-steps-total 49: less than one trial's 50"):
        space.with_budget(max_steps_total=49)
    with pytest.raises(SpaceError, match="--max-steps-total: must be >= 1, got 0"):
        space.with_budget(max_steps_total=0)
    on_ray = space_from_dict({"params": params, "budget": {"max_steps": 50}}, driver="ray")
    with pytest.raises(SpaceError, match="--max-steps-total: the ray driver"):  # as in a file
        on_ray.with_budget(max_steps_total=500)


def test_timeout_accepts_units():
    raw = {"params": {"x": 1}, "budget": {"trials": None, "timeout": "2m"}}
    assert space_from_dict(raw).budget.timeout == 120.0


def test_one_space_file_serves_every_driver_through_per_driver_sections():
    raw = {
        "params": {"x": {"type": "float", "low": 0, "high": 1}},
        "driver": {"seed": 3, "optuna": {"sampler": "random"}, "bo": {"init_points": 2}},
    }
    assert space_from_dict(raw, driver="bo").driver_options["init_points"] == 2
    assert space_from_dict(raw, driver="optuna").driver_options["sampler"] == "random"
    assert space_from_dict(raw, driver="random").driver_options == {"seed": 3}


def test_enqueue_file_is_checked_against_the_space(tmp_path):
    space = space_from_dict({"params": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2}}})
    good = tmp_path / "good.yaml"
    good.write_text("- {lr: 1e-3}\n")
    assert load_enqueue(good, space) == ({"lr": 1e-3},)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {lr: 1.0}\n")
    with pytest.raises(SpaceError, match=r"item 0: 1.0 is outside the space \(lr\)"):
        load_enqueue(bad, space)


BAD = {
    "unknown_config_key": (
        "params:\n  train.lerning_rate: {type: float, low: 1e-5, high: 1e-2}\n",
        "unknown config key 'train.lerning_rate' (did you mean 'train.learning_rate'?)",
    ),
    "low_not_below_high": (
        "params:\n  train.learning_rate: {type: float, low: 0.1, high: 0.01}\n",
        "params.train.learning_rate: low (0.1) must be below high (0.01)",
    ),
    "log_with_low_zero": (
        "params:\n  train.weight_decay: {type: float, low: 0, high: 0.1, log: true}\n",
        "params.train.weight_decay: a log scale needs low > 0, got 0",
    ),
    "empty_choices": (
        "params:\n  train.optim: {type: categorical, choices: []}\n",
        "params.train.optim.choices: expected a non-empty list of choices",
    ),
    "non_numeric_bound": (
        "params:\n  train.learning_rate: {type: float, low: abc, high: 0.1}\n",
        "params.train.learning_rate.low: expected float, got 'abc'",
    ),
    "nan_bound": (
        "params:\n  train.learning_rate: {type: float, low: .nan, high: 0.1}\n",
        "params.train.learning_rate.low: must be a finite number, got nan",
    ),
    "step_not_dividing_range": (
        "params:\n  model.dropout: {type: float, low: 0.0, high: 0.3, step: 0.07}\n",
        "params.model.dropout.step: 0.07 does not divide high - low (0.3)",
    ),
    "fractional_int_bound": (
        "params:\n  train.per_device_train_batch_size: {type: int, low: 8.5, high: 64}\n",
        "params.train.per_device_train_batch_size.low: an int range needs whole numbers",
    ),
    "condition_on_unknown_param": (
        "params:\n  train.sgd_momentum: {type: float, low: 0.5, high: 0.9, when: {train.optm: sgd}}\n",
        "params.train.sgd_momentum.when: condition on unknown param 'train.optm'",
    ),
    "condition_on_unknown_value": (
        "params:\n  train.optim: {choices: [adamw, sgd]}\n"
        "  train.sgd_momentum: {type: float, low: 0.5, high: 0.9, when: {train.optim: rmsprop}}\n",
        "params.train.sgd_momentum.when: 'rmsprop' is not a choice of 'train.optim'",
    ),
    "unknown_driver_option": (
        "driver: {samplr: tpe}\nparams:\n  train.learning_rate: 0.1\n",
        "driver.samplr: unknown option for driver optuna; accepted: seed, sampler",
    ),
    "unknown_option_of_another_driver": (
        "driver: {bo: {acqusition: ei}}\nparams:\n  train.learning_rate: 0.1\n",
        "driver.bo.acqusition: unknown option for driver bo",
    ),
    "bad_option_value": (
        "driver: {sampler: bogus}\nparams:\n  train.learning_rate: 0.1\n",
        "driver.sampler: expected auto, tpe, gp, cmaes, qmc, random, grid or nsga2, got 'bogus'",
    ),
    "grid_over_a_continuous_range": (
        "driver: {sampler: grid}\nparams:\n  train.learning_rate: {type: float, low: 0.1, high: 1}\n",
        "params.train.learning_rate: the grid sampler needs a step",
    ),
    "unknown_section": (
        "budjet: {trials: 3}\nparams:\n  train.learning_rate: 0.1\n",
        "budjet: unknown section (did you mean 'budget'?)",
    ),
    "unknown_field": (
        "params:\n  train.learning_rate: {type: float, low: 0.1, high: 1, lg: true}\n",
        "params.train.learning_rate.lg: unknown field for float (did you mean 'log'?)",
    ),
    "no_budget_end": (
        "budget: {trials: null}\nparams:\n  train.learning_rate: 0.1\n",
        "budget: set trials, timeout or max_steps_total",
    ),
    "step_budget_not_a_whole_number": (
        "budget: {max_steps_total: 1.5e3}\nparams:\n  train.learning_rate: 0.1\n",
        "budget.max_steps_total: expected int or null, got '1.5e3'",
    ),
    "step_budget_below_one_trial": (
        "budget: {max_steps: 100, max_steps_total: 99}\nparams:\n  train.learning_rate: 0.1\n",
        "budget.max_steps_total: 99 is less than one trial's max_steps (100)",
    ),
    "yaml_syntax": (
        "params:\n  train.learning_rate: {type: float\n  low: 1\n",
        "space.yaml:3: invalid YAML",
    ),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_space_is_one_line_naming_file_and_key_and_starts_nothing(tmp_path, case):
    text, expected = BAD[case]
    path = write(tmp_path, text)
    with pytest.raises(SpaceError) as caught:
        start_search(path, tmp_path / "runs")
    message = str(caught.value)
    # "FILE: what is wrong (KEY)"; the table reads "KEY: what is wrong"
    key, _, problem = expected.partition(": ")
    assert expected in message or (problem in message and message.endswith(f"({key})")), message
    assert message.startswith(str(path)) and "\n" not in message
    assert isinstance(caught.value, UserInputError)
    assert not (tmp_path / "runs").exists()


def test_missing_space_file_is_named(tmp_path):
    with pytest.raises(SpaceError, match="nope.yaml: space file not found"):
        load_space(tmp_path / "nope.yaml")


def test_unknown_driver_name_lists_the_drivers(tmp_path):
    with pytest.raises(UserInputError, match="unknown driver 'hyperopt'; choose one of optuna"):
        load_space(write(tmp_path, GOOD), driver="hyperopt")
    assert {"optuna", "random", "bo", "ray"} <= set(DRIVERS)


def test_importing_spaces_and_drivers_imports_no_search_library():
    import subprocess
    import sys

    modules = ", ".join(DRIVERS[name][0] for name in available_drivers())
    code = (
        f"import sys, hpo.space, {modules}; "
        "print([m for m in ('optuna', 'bayes_opt', 'ray', 'torch') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


def test_numeric_driver_options_accept_yaml_text_and_are_range_checked():
    raw = {
        "params": {"x": {"type": "float", "low": 0, "high": 1}},
        "driver": {"bo": {"xi": "1e-3"}, "seed": 1},
    }
    assert space_from_dict(raw, driver="bo").driver_options["xi"] == 1e-3
    raw["driver"]["bo"] = {"init_points": 0}
    with pytest.raises(SpaceError, match=r"must be >= 1, got 0 \(driver.bo.init_points\)$"):
        space_from_dict(raw, driver="bo")


def test_a_driver_section_wins_over_flat_options_whatever_their_order():
    raw = {"params": {"x": 1}, "driver": {"optuna": {"sampler": "qmc"}, "sampler": "random"}}
    assert space_from_dict(raw).driver_options["sampler"] == "qmc"


def test_study_names_are_plain_folder_names():
    space = space_from_dict({"params": {"x": 1}})
    with pytest.raises(UserInputError, match="plain folder name"):
        StudySpec.for_space(space, name="../elsewhere")
    assert StudySpec.for_space(space, name="lr").dir == Path("runs/lr")


def test_a_runner_space_reads_transformers_eval_names_as_the_runners_metrics():
    params = {"train.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}}
    runner_space = load_space(
        {"params": params, "objective": "eval_loss"}, config_key_check=check_key
    )
    assert [(o.metric, o.direction) for o in runner_space.objectives] == [("val_loss", "minimize")]
    command_space = load_space(
        {
            "command": "python train.py --lr {lr}",
            "params": {"lr": params["train.learning_rate"]},
            "objective": "eval_loss",
        }
    )
    assert command_space.objectives[0].metric == "eval_loss"  # the names its script reports


def test_the_tests_unpruned_lr_wd_is_the_shipped_one_but_for_its_pruner():
    """tests/spaces/lr_wd.yaml stands in for the shipped space where a test needs every trial
    complete; it must not drift from the space it stands in for."""
    shipped = yaml.safe_load((ROOT / "experiments/spaces/lr_wd.yaml").read_text())
    unpruned = yaml.safe_load((ROOT / "tests/spaces/lr_wd.yaml").read_text())
    assert unpruned["driver"]["optuna"].pop("pruner") == "none"
    assert (ROOT / "tests/spaces" / unpruned.pop("experiment")).resolve() == (
        ROOT / "experiments/spaces" / shipped.pop("experiment")
    ).resolve()
    assert unpruned == shipped


def test_every_driver_option_declares_what_its_default_is():
    # an Option is checked by runner.schema like every config value: its own default passes
    from hpo.space.driver_options import driver_module
    from runner.schema import checked

    def fail(key: str, problem: str) -> AssertionError:
        return AssertionError(f"{key}: {problem}")

    for name in available_drivers():
        for key, option in driver_module(name).OPTIONS.items():
            assert checked(option.default, option, f"{name}.{key}", fail) == option.default
