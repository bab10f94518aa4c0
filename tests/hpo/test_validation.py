"""The validation pass before any work (hpo.validation): bad input is one line, exit 2, and
nothing is created; paths in a space file are relative to it, from any current folder."""

from __future__ import annotations

import math
import os
import random
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpo.cli import main
from hpo.objective import load_function
from hpo.space import load_space, space_from_dict
from hpo.validation import check_search, sample_point
from runner.config import check_key, config_from_dict
from runner.errors import UserInputError

ROOT = Path(__file__).parents[2]
LM_TINY = ROOT / "experiments" / "lm_tiny.yaml"
LR_WD = ROOT / "experiments" / "spaces" / "lr_wd.yaml"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """A current folder that is neither the project root nor the space file's folder."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def space_file(folder: Path, params: str, head: str = "") -> Path:
    path = folder / "space.yaml"
    path.write_text(f"experiment: {LM_TINY}\n{head}params:\n{params}")
    return path


def refused(capsys, args: list[str], folder: Path) -> str:
    """The one error line of a refused command, checking that it created nothing in folder."""
    before = sorted(p.name for p in folder.iterdir())
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hpo: error: "), err
    assert "Traceback" not in err[0]
    assert sorted(p.name for p in folder.iterdir()) == before, "a refused command created files"
    return err[0]


SPACES = {
    "warmup_ratio_range_reaching_1.5": (
        "  train.warmup_ratio: {type: float, low: 0.0, high: 1.5}\n",
        r"the high end 1.5 is refused by the runner: must be in \[0, 1\).*"
        r"\(params.train.warmup_ratio.high\)$",
    ),
    "huge_batch_size": (
        "  train.per_device_train_batch_size: {type: int, low: 8, high: 1000000000}\n",
        r"sane limit.*\(params.train.per_device_train_batch_size.high\)$",
    ),
    "heads_not_dividing_the_width": (
        "  model.n_head: {choices: [4, 3]}\n",
        r"the choice 3 .*model.n_embd must be divisible.*\(params.model.n_head.choices\)$",
    ),
    "bad_fixed_value": (
        "  train.optim: rmsprop\n",
        r"fixed value 'rmsprop'.*\(params.train.optim\)$",
    ),
    "huge_float_bound": (
        "  train.learning_rate: {type: float, low: 1e-4, high: 1e999999}\n",
        r"must be a finite number.*\(params.train.learning_rate.high\)$",
    ),
    "huge_int_bound": (
        "  train.max_steps: {type: int, low: 1, high: 99999999999999999999999999999999}\n",
        r"\(params.train.max_steps.high\)$",
    ),
    "list_as_a_type_name": (
        "  train.learning_rate: {type: [float], low: 1e-4, high: 1e-2}\n",
        r"expected float, int, categorical or fixed.*\(params.train.learning_rate.type\)$",
    ),
    "negative_driver_seed": (
        "  train.learning_rate: {type: float, low: 1e-4, high: 1e-2}\n",
        r"must be in \[0, 2\*\*32\), got -1 \(driver.seed\)$",
    ),
    "metric_the_task_does_not_report": (
        "  train.learning_rate: {type: float, low: 1e-4, high: 1e-2}\n",
        r"'val_acuracy' is not a metric the lm experiment .* \(objective.metric\)$",
    ),
}
HEADS = {
    "negative_driver_seed": "driver: {seed: -1}\n",
    "metric_the_task_does_not_report": "objective: val_acuracy\n",
}


@pytest.mark.parametrize("case", SPACES)
def test_a_bad_space_is_refused_before_any_work(case, elsewhere, capsys):
    params, expected = SPACES[case]
    path = space_file(elsewhere, params, HEADS.get(case, ""))
    line = refused(capsys, ["search", "--space", str(path)], elsewhere)
    # FILE:LINE: the line of the key in the space file (params start on line 2 or 3)
    assert re.match(rf"hpo: error: {re.escape(str(path))}:[23]: ", line), line
    assert re.search(expected, line), line


def test_bad_files_and_flags_are_refused_before_any_work(elsewhere, capsys):
    (elsewhere / "bad8.yaml").write_bytes(b"params: {a: 1}\n\xff\xfe\n")
    assert "not UTF-8 text" in refused(capsys, ["search", "--space", "bad8.yaml"], elsewhere)
    (elsewhere / "corpus.bin").write_bytes(os.urandom(30000))
    cases = {
        ("-o", "data.path=nosuch.txt"): "nosuch.txt does not exist",
        ("-o", "data.path=corpus.bin"): "corpus.bin is not a text file",
        ("--objective", "os:system"): "os is the Python standard library",
        ("--objective", ".relative:fn"): "is not a module name",
        ("--objective", "./nosuch.py:fn"): "is not a Python file",
        ("--seed", "-1"): "argument --seed: invalid non-negative integer value",
        ("--seed", str(2**64)): "--seed: must be in [0, 2**32), got 18446744073709551616",
        ("--tracking-uri", "foo://x"): "unknown tracking URI scheme 'foo'",
        ("--storage", "redis://x"): "unknown storage scheme 'redis'",
        ("--storage", "sqlite:///nosuch/x.db"): "the folder nosuch does not exist",
        ("--storage", "memory", "--driver", "random"): "only the optuna driver keeps a study",
        (
            "-o",
            "seed=4294967296",
        ): "must be in [0, 2**32), got 4294967296 (seed)",
    }
    for flags, expected in cases.items():
        line = refused(capsys, ["search", "--space", str(LR_WD), *flags], elsewhere)
        assert expected in line, line


def test_a_worker_on_a_missing_sqlite_database_creates_none(elsewhere, capsys):
    args = ["worker", "--storage", "sqlite:///nosuch.db", "--study", "s"]
    assert "nosuch.db does not exist" in refused(capsys, args, elsewhere)


def test_hpo_train_refuses_a_binary_corpus_before_creating_the_trial_folder(elsewhere, capsys):
    (elsewhere / "corpus.bin").write_bytes(os.urandom(30000))
    args = ["train", "--config", str(LM_TINY), "-o", "data.path=corpus.bin", "--output", "out"]
    assert "(data.path)" in refused(capsys, args, elsewhere)


def tiny_project(folder: Path) -> Path:
    """A corpus, an experiment naming it relatively, and a space naming the experiment."""
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "c.txt").write_text(
        "\n\n".join(f"paragraph {i} " + "some words of text " * 10 for i in range(200))
    )
    (folder / "exps").mkdir()
    (folder / "exps" / "tiny.yaml").write_text(
        "task: lm\n"
        "data: {path: ../data/c.txt, tokenizer: char, block_size: 16, max_chars: 0}\n"
        "model: {n_layer: 1, n_head: 2, n_embd: 16}\n"
        "train: {max_steps: 2, per_device_train_batch_size: 4, logging_steps: 1}\n"
        "eval: {eval_steps: 2, max_eval_batches: 1, sample_tokens: 0}\n"
    )
    space = folder / "space.yaml"
    space.write_text(
        "experiment: exps/tiny.yaml\nbudget: {trials: 1}\ndriver: {optuna: {sampler: random}}\n"
        "params:\n  train.learning_rate: {type: float, low: 1e-4, high: 1e-2, log: true}\n"
    )
    return space


def test_paths_in_a_space_file_are_relative_to_it_from_any_folder(tmp_path, elsewhere, capsys):
    space = tiny_project(tmp_path / "project")
    loaded = load_space(space, config_key_check=check_key)
    assert loaded.experiment == str(tmp_path / "project" / "exps" / "tiny.yaml")
    runner = check_search(loaded, track=False)
    config = runner.config_for({"train.learning_rate": 1e-3}, elsewhere / "t")
    assert config.data.path == str(tmp_path / "project" / "data" / "c.txt")
    # -o on the command line stays relative to the current folder
    (elsewhere / "mine.txt").write_text("x " * 100 + "\n\n" + "y " * 100)
    runner = check_search(loaded, overrides=["data.path=mine.txt"], track=False)
    assert runner.config_for({}, elsewhere / "t").data.path == str(elsewhere / "mine.txt")
    # a real search from another folder
    runs = tmp_path / "runs"
    args = ["search", "--space", str(space), "--runs", str(runs), "--no-track", "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    assert (runs / "space" / "trials" / "0" / "result.json").is_file()


def test_hpo_train_resolves_data_paths_against_the_config_file(tmp_path, elsewhere):
    tiny_project(tmp_path / "project")
    config = tmp_path / "project" / "exps" / "tiny.yaml"
    assert main(["train", "--config", str(config), "--output", "out", "--quiet"]) == 0
    saved = (elsewhere / "out" / "config.yaml").read_text()
    assert str(tmp_path / "project" / "data" / "c.txt") in saved


def test_objective_functions_by_module_or_by_file(tmp_path, elsewhere, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # load_function adds the file's folder
    (elsewhere / "objectives_here.py").write_text(
        "def good(params, reporter):\n    return 1.0\n"
        "def one_arg(params):\n    return 1.0\n"
        "lam = lambda p, r: 1.0\n"
        "class K:\n    def __call__(self, p, r):\n        return 1.0\n"
        "k = K()\n"
    )
    assert load_function("./objectives_here.py:good")({}, None) == 1.0
    assert load_function("objectives_here:good")({}, None) == 1.0  # from the current folder
    for spec, expected in {
        "objectives_here:one_arg": "cannot be called as one_arg(params, reporter)",
        "objectives_here:lam": "must be a module-level function",
        "objectives_here:k": "not a Python function",
        "objectives_here:nothing": "has no function",
        "shutil:rmtree": "standard library",
        "builtins:print": "standard library",
        "no_such_module_xyz:f": "cannot import",
        "nocolon": "expected MODULE:FUNCTION",
    }.items():
        with pytest.raises(UserInputError, match=re.escape(expected)):
            load_function(spec)


def test_a_fixed_false_is_recorded_as_false_not_null():
    space = space_from_dict({"params": {"model.tie_word_embeddings": False, "x": 0}})
    recorded = space.to_dict()["params"]
    assert recorded["model.tie_word_embeddings"] == {"type": "fixed", "value": False}
    assert recorded["x"] == {"type": "fixed", "value": 0}
    raw = space.to_dict()
    raw["driver"].pop("name")
    assert space_from_dict(raw) == space


# ----------------------------------------------------------------------------- property


def valid_runner_config(point: dict) -> bool:
    try:
        config_from_dict(
            {}, [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in point.items()]
        )
    except UserInputError:
        return False
    return True


KEYS = [
    "train.learning_rate",
    "train.warmup_ratio",
    "train.per_device_train_batch_size",
    "model.n_head",
    "model.n_embd",
    "train.optim",
    "data.block_size",
    "seed",
    "train.max_grad_norm",
]
# Mostly plausible values, so that many spaces load and their samples are checked; sometimes
# wild ones (huge, NaN, negative, text, nested), so that refusals are exercised too.
PLAUSIBLE_NUMBERS = st.one_of(
    st.integers(0, 300), st.floats(0, 1), st.sampled_from([1e-4, 1e-2, 0.5, 16, 64, 128])
)
WILD_NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-1, 1.5, 2**32, 10**30, "1e-3", "x", 1e308, -1e308]),
)
NUMBERS = st.one_of(PLAUSIBLE_NUMBERS, PLAUSIBLE_NUMBERS, PLAUSIBLE_NUMBERS, WILD_NUMBERS)
SCALARS = st.one_of(
    NUMBERS, st.booleans(), st.none(), st.text(max_size=8), st.sampled_from(["adamw", "sgd"])
)
ANY = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
SPEC = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["float", "int"]), "low": NUMBERS, "high": NUMBERS},
        optional={"log": st.one_of(st.booleans(), st.booleans(), ANY), "step": NUMBERS},
    ),
    st.fixed_dictionaries(
        {"type": st.just("categorical"), "choices": st.lists(SCALARS, min_size=1, max_size=4)},
        optional={"when": st.dictionaries(st.sampled_from(KEYS), ANY, max_size=1)},
    ),
    st.fixed_dictionaries({"type": st.one_of(st.just("fixed"), ANY), "value": ANY}),
    NUMBERS,
    ANY,
)
PLAUSIBLE_SPACE = st.fixed_dictionaries(
    {"params": st.dictionaries(st.sampled_from(KEYS), SPEC, min_size=1, max_size=4)},
    optional={
        "objective": st.sampled_from(["val_loss", "val_perplexity", "val_accuracy", "loss"]),
        "budget": st.fixed_dictionaries({}, optional={"trials": NUMBERS, "timeout": SCALARS}),
        "driver": st.fixed_dictionaries({}, optional={"seed": NUMBERS}),
    },
)
WILD_SPACE = st.one_of(
    ANY,
    st.dictionaries(
        st.sampled_from(["params", "objective", "budget", "driver", "nosuch", "experiment"]),
        ANY,
    ),
    st.fixed_dictionaries({"params": st.dictionaries(st.text(max_size=12), SPEC, max_size=3)}),
)
SPACE = st.one_of(PLAUSIBLE_SPACE, PLAUSIBLE_SPACE, PLAUSIBLE_SPACE, WILD_SPACE)


def float_range(low: float, high: float, log: bool = False):
    bounds = st.lists(st.floats(low, high), min_size=2, max_size=2, unique=True).map(sorted)
    return bounds.map(lambda b: {"type": "float", "low": b[0], "high": b[1], "log": log})


def int_range(low: int, high: int):
    bounds = st.lists(st.integers(low, high), min_size=2, max_size=2, unique=True).map(sorted)
    return bounds.map(lambda b: {"type": "int", "low": b[0], "high": b[1]})


def choices(values: list):
    return st.lists(st.sampled_from(values), min_size=1, max_size=len(values), unique=True).map(
        lambda c: {"type": "categorical", "choices": c}
    )


# Ranges every value of which the runner accepts on lm_tiny (n_embd 128): no false refusals.
VALID_RANGES = {
    "train.learning_rate": st.one_of(float_range(1e-6, 1.0, log=True), float_range(0.0, 1.0)),
    "train.warmup_ratio": float_range(0.0, 0.99),
    "train.per_device_train_batch_size": int_range(1, 512),
    "model.n_head": choices([1, 2, 4, 8]),
    "model.n_embd": choices([64, 128, 256]),
    "train.optim": choices(["adamw", "sgd"]),
    "data.block_size": int_range(2, 512),
    "seed": int_range(0, 2**32 - 1),
}
VALID_SPACE = st.fixed_dictionaries(
    {
        "params": st.lists(
            st.sampled_from(list(VALID_RANGES)), min_size=1, max_size=4, unique=True
        ).flatmap(lambda keys: st.fixed_dictionaries({k: VALID_RANGES[k] for k in keys}))
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(VALID_SPACE)
@pytest.mark.slow
def test_a_space_of_valid_ranges_is_accepted_and_its_samples_run(raw):
    space = space_from_dict(
        {**raw, "experiment": str(LM_TINY)}, "ok.yaml", config_key_check=check_key
    )
    check_search(space, track=False)
    rng = random.Random(2)
    for _ in range(5):
        assert valid_runner_config(sample_point(space, rng))


def space_is_refused_or_every_sample_runs(raw: dict) -> None:
    if isinstance(raw, dict):
        raw = {**raw, "experiment": str(LM_TINY)}
    try:
        space = space_from_dict(raw, "fuzz.yaml", config_key_check=check_key)
        check_search(space, track=False)
    except UserInputError:
        return  # refused with a one-line message; any other exception fails the test
    rng = random.Random(1)
    for _ in range(5):
        point = sample_point(space, rng)
        assert valid_runner_config(point), point
        assert all(not isinstance(v, float) or math.isfinite(v) for v in point.values())


@settings(
    max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
@given(SPACE)
@pytest.mark.slow
def test_any_space_loads_into_runnable_samples_or_is_refused(raw):
    space_is_refused_or_every_sample_runs(raw)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
@given(SPACE)
def test_any_space_loads_into_runnable_samples_or_is_refused_long_run(raw):
    space_is_refused_or_every_sample_runs(raw)


def test_a_conditional_param_is_checked_at_its_own_ends(elsewhere, capsys):
    # sgd_momentum is active only with sgd, which is not the first choice
    params = (
        "  train.optim: {choices: [adamw, sgd]}\n"
        "  train.sgd_momentum: {type: float, low: 0.5, high: 1.2, when: {train.optim: sgd}}\n"
    )
    line = refused(capsys, ["search", "--space", str(space_file(elsewhere, params))], elsewhere)
    assert line.endswith("(params.train.sgd_momentum.high)") and ":4: the high end 1.2" in line


def test_a_device_or_precision_this_machine_lacks_is_refused_before_any_work(elsewhere, capsys):
    import torch

    train = ["train", "--config", str(LM_TINY), "--output", "out", "--quiet"]
    line = refused(capsys, [*train, "-o", "train.device=cudax"], elsewhere)
    assert "unknown device 'cudax'" in line and line.endswith("(train.device)")
    if torch.cuda.is_available():
        count = torch.cuda.device_count()
        line = refused(capsys, [*train, "-o", f"train.device=cuda:{count}"], elsewhere)
        assert f"this machine has {count} CUDA device(s)" in line
        return
    line = refused(capsys, [*train, "-o", "train.device=cuda"], elsewhere)
    assert "no CUDA device is available (train.device)" in line
    # (fp16 runs on CPU, for tests of the GradScaler paths: tests/runner/test_fp16_cpu.py)
    space = space_file(elsewhere, "  train.device: {choices: [cpu, cuda]}\n")
    line = refused(capsys, ["search", "--space", str(space)], elsewhere)
    assert "no CUDA device is available" in line
