"""W&B sweeps and Ray Tune-style spaces: converted into the space a user would write by hand,
what has no equivalent refused in one line, and no tune.* string ever run."""

from __future__ import annotations

import dataclasses
import random
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hpo.cli import main
from hpo.space import SpaceError, load_space
from hpo.space.foreign import parse_tune_call, to_hpo_space
from hpo.validation import sample_point

ROOT = Path(__file__).parents[2]
EXPERIMENT = str(ROOT / "experiments" / "lm_tiny.yaml")

HAND_WRITTEN = """\
objective: {metric: val_loss, direction: minimize}
budget: {trials: 12}
params:
  train.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
  train.weight_decay: {type: float, low: 0.0, high: 0.1}
  train.optim: {type: categorical, choices: [adamw, sgd]}
  model.n_layer: {type: int, low: 1, high: 4}
  model.dropout: {type: float, low: 0.1, high: 0.5, step: 0.1}
  train.warmup_ratio: {type: float, low: 0.01, high: 1.0, log: true}
  train.max_grad_norm: 1.0
"""

# as a W&B user writes it: nested parameters, W&B's names, one bound as natural logs
WANDB_SWEEP = """\
program: train.py
method: random
metric: {name: val_loss, goal: minimize}
run_cap: 12
parameters:
  train.learning_rate: {distribution: log_uniform_values, min: 1e-5, max: 1e-2}
  train.weight_decay: {distribution: uniform, min: 0.0, max: 0.1}
  train.optim: {values: [adamw, sgd]}
  model:
    parameters:
      n_layer: {min: 1, max: 4}
      dropout: {distribution: q_uniform, min: 0.05, max: 0.5, q: 0.1}
  train.warmup_ratio: {distribution: log_uniform, min: -4.605170185988091, max: 0}
  train.max_grad_norm: {value: 1.0}
"""

# as a Ray Tune user writes it: a nested param_space, randint's upper bound exclusive
RAY_SPACE = """\
metric: val_loss
mode: min
num_samples: 12
param_space:
  train:
    learning_rate: tune.loguniform(1e-5, 1e-2)
    weight_decay: tune.uniform(0.0, 0.1)
    optim: tune.choice(["adamw", "sgd"])
    warmup_ratio: tune.loguniform(0.01, 1.0, base=2)
    max_grad_norm: 1.0
  model:
    n_layer: tune.randint(1, 5)
    dropout: tune.quniform(0.05, 0.5, 0.1)
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def by_name(space) -> dict:
    return {p.name: p for p in space.params}


@pytest.mark.parametrize("foreign", [WANDB_SWEEP, RAY_SPACE], ids=["wandb", "ray"])
def test_a_foreign_space_is_the_hand_written_one_and_draws_the_same_samples(tmp_path, foreign):
    expected = load_space(write(tmp_path, "hpo.yaml", HAND_WRITTEN), driver="random")
    converted = load_space(write(tmp_path, "foreign.yaml", foreign), driver="random")
    assert by_name(converted) == by_name(expected)
    assert converted.objectives == expected.objectives
    assert converted.budget == expected.budget
    # the order of params may differ (nesting): sample them in one order
    ordered = [by_name(converted)[p.name] for p in expected.params]
    for seed in range(20):
        a = sample_point(expected, random.Random(seed))
        b = sample_point(dataclasses.replace(converted, params=tuple(ordered)), random.Random(seed))
        assert a == b


def test_wandb_methods_and_hyperband_become_driver_options(tmp_path):
    sweep = WANDB_SWEEP.replace("method: random", "method: bayes") + (
        "early_terminate: {type: hyperband, eta: 2, min_iter: 3}\n"
    )
    space = load_space(write(tmp_path, "s.yaml", sweep), driver="optuna")
    assert space.driver_options["sampler"] == "tpe"
    assert space.driver_options["pruner"] == "hyperband"
    assert space.driver_options["reduction_factor"] == 2
    grid = textwrap.dedent("""\
        method: grid
        parameters:
          train.optim: {values: [adamw, sgd]}
          model.n_layer: {values: [1, 2, 3]}
        """)
    space = load_space(write(tmp_path, "g.yaml", grid), driver="optuna")
    assert space.driver_options["sampler"] == "grid" and space.budget.trials is None


def test_ray_grid_search_uses_the_grid_sampler(tmp_path):
    text = """\
        train:
          optim: tune.grid_search(["adamw", "sgd"])
          seed: tune.grid_search([0, 1])
        """
    space = load_space(write(tmp_path, "g.yaml", text), driver="optuna")
    assert space.driver_options["sampler"] == "grid"
    assert {p.name: p.distribution.choices for p in space.searched} == {
        "train.optim": ("adamw", "sgd"),
        "train.seed": (0, 1),
    }


def test_tune_strings_inside_hpo_params_are_converted(tmp_path):
    text = "params:\n  train.learning_rate: tune.loguniform(1e-4, 1e-2)\n  train.seed: 3\n"
    space = load_space(write(tmp_path, "s.yaml", text), driver="random")
    lr = space.param("train.learning_rate").distribution
    assert (lr.low, lr.high, lr.log) == (1e-4, 1e-2, True)


def test_hpo_space_convert_prints_and_writes_a_space_that_loads_the_same(tmp_path, capsys):
    sweep = write(tmp_path, "sweep.yaml", WANDB_SWEEP)
    assert main(["space", "convert", str(sweep)]) == 0
    out, err = capsys.readouterr()
    assert "hpo: note: program: not converted" in err
    converted = yaml.safe_load(out)
    assert converted["params"]["model.n_layer"] == {"type": "int", "low": 1, "high": 4}
    target = tmp_path / "space.yaml"
    assert main(["space", "convert", str(sweep), "-o", str(target)]) == 0
    assert target.read_text() == out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [], "temp left"
    assert by_name(load_space(target, driver="random")) == by_name(
        load_space(sweep, driver="random")
    )


NO_EQUIVALENT = [
    # (file, problem words, key named)
    (
        "method: random\nparameters:\n  x: {distribution: inv_log_uniform, min: 0, max: 1}\n",
        "no equivalent",
        "parameters.x.distribution",
    ),
    (
        "method: random\nparameters:\n  x: {values: [a, b], probabilities: [0.3, 0.7]}\n",
        "no equivalent",
        "parameters.x.probabilities",
    ),
    (
        "method: random\nparameters:\n  x: {distribution: normal, mu: 0, sigma: 1}\n",
        "no equivalent",
        "parameters.x.distribution",
    ),
    ("method: bayes\nparameters:\n  x: {min: 0.0, max: 1.0}\n", "needs a metric", "metric"),
    ("method: hyperopt\nparameters:\n  x: {min: 0.0, max: 1.0}\n", "random, grid", "method"),
    ("param_space:\n  x: 'tune.sample_from(lambda spec: 1)'\n", "no equivalent", "param_space.x"),
    ("x: tune.randn(0, 1)\n", "no equivalent", "x"),
    ("x: tune.qloguniform(1e-4, 1e-1, 1e-4)\n", "no equivalent", "x"),
    (
        "x: tune.grid_search([1, 2])\ny: tune.uniform(0, 1)\n",
        "crossed with sampled",
        "y",
    ),
    ("num_samples: 3\nx: tune.grid_search([1, 2])\n", "runs each point once", "num_samples"),
    # refused by hpo's own checks after the conversion: the key is still the file's
    ("method: random\nparameters:\n  x: {values: [[1], [2]]}\n", "scalars", "parameters.x.values"),
    ("method: random\nparameters:\n  x: {min: 0.5, max: 0.1}\n", "below high", "parameters.x"),
    ("param_space:\n  x: tune.choice([[1], [2]])\n", "scalars", "param_space.x"),
]


@pytest.mark.parametrize("text,problem,key", NO_EQUIVALENT)
def test_what_has_no_equivalent_is_one_error_line_naming_the_key(
    tmp_path, capsys, text, problem, key
):
    path = write(tmp_path, "s.yaml", text)
    out = tmp_path / "out.yaml"
    assert main(["space", "convert", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hpo: error: {path}"), err
    assert problem in err[0] and err[0].endswith(f"({key})"), err[0]
    assert not out.exists()


@pytest.mark.slow
def test_hpo_search_refuses_a_foreign_space_without_equivalent_before_any_work(tmp_path, capsys):
    path = write(tmp_path, "s.yaml", NO_EQUIVALENT[0][0])
    code = main(
        [
            "search",
            "--space",
            str(path),
            "--objective",
            "tests.hpo.search_objectives:quadratic",
            "--runs",
            str(tmp_path / "runs"),
            "--no-track",
            "--quiet",
        ]
    )
    assert code == 2
    assert "inv_log_uniform" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


HOSTILE = [
    "tune.choice(__import__('os').system('touch PWNED'))",
    "tune.uniform(0, open('PWNED', 'w').close() or 1)",
    "tune.choice([1, 2]) if open('PWNED', 'w') else 0",
    "tune.choice([1, 2]); open('PWNED', 'w')",
    "tune.choice([1, 2])\nopen('PWNED', 'w')",
    "tune.__class__.__base__.__subclasses__()",
    "tune.sample_from(lambda _: open('PWNED', 'w'))",
    "tune.eval(\"open('PWNED', 'w')\")",
    "tune.uniform(*[0, 1])",
    "tune.uniform(**{'lower': 0, 'upper': 1})",
    "tune.choice([1] * 10**9)",
    "tune.choice([" * 200 + "]" * 200 + ")",
    "tune.choice(" + "[" * 5000,
    "tune.choice([tune.uniform(0, 1)])",
    "tune.uniform(lower=0, upper=1, lower=2)",
    "tune.uniform(0, 1, 2, 3)",
    "tune.choice(x for x in [1])",
    'tune.choice(f\'{open("PWNED", "w")}\')',
    "tune.uniform(0, 1e309)",
    "tune.loguniform(0, 1, base=1)",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_tune_strings_are_refused_and_nothing_runs(tmp_path, monkeypatch, text):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpaceError) as caught:
        to_hpo_space({"param_space": {"x": text}}, "s.yaml")
    assert str(caught.value).startswith("s.yaml: ") and str(caught.value).endswith(
        "(param_space.x)"
    )
    assert not (tmp_path / "PWNED").exists()
    assert len(str(caught.value)) < 400


def test_a_string_that_is_no_tune_call_is_a_constant_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = "(lambda: open('PWNED', 'w'))()"
    space, _, _ = to_hpo_space({"param_space": {"x": text, "y": "tune.uniform(0, 1)"}}, "s.yaml")
    assert space["params"]["x"] == {"type": "fixed", "value": text}
    assert not (tmp_path / "PWNED").exists()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
@pytest.mark.slow
def test_any_text_in_a_tune_call_is_a_spec_or_a_space_error(args):
    try:
        name, values = parse_tune_call(f"tune.choice({args})", "x", _fail)
    except SpaceError:
        return
    assert name == "choice" and set(values) == {"categories"}


def _fail(key, problem):
    return SpaceError(f"s.yaml: {problem} ({key})")
