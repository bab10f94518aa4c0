import re
from pathlib import Path

import pytest

from runner.config import (
    TrialConfig,
    config_from_dict,
    describe_config,
    load_config,
    save_config,
)
from runner.errors import ConfigError

EXPERIMENTS = Path(__file__).parents[2] / "experiments"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", sorted(p.name for p in EXPERIMENTS.glob("*.yaml")))
def test_every_shipped_experiment_loads(name):
    assert isinstance(load_config(EXPERIMENTS / name), TrialConfig)


def test_unknown_key_names_the_key_the_file_and_the_closest_valid_key(tmp_path):
    path = write(tmp_path, "train:\n  learnig_rate: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert "train.learnig_rate" in str(err.value)
    assert "did you mean 'train.learning_rate'" in str(err.value)


def test_unknown_section_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'trian'"):
        load_config(write(tmp_path, "trian: {}\n"))


def test_wrong_type_names_key_and_expected_type(tmp_path):
    with pytest.raises(
        ConfigError, match=r"exp.yaml: expected int, got 'many' \(train.max_steps\)$"
    ):
        load_config(write(tmp_path, "train:\n  max_steps: many\n"))


def test_yaml_scientific_notation_without_dot_is_a_float(tmp_path):
    # YAML 1.1 reads 1e-5 as a string; a user means a number
    config = load_config(write(tmp_path, "train:\n  learning_rate: 1e-5\n"))
    assert config.train.learning_rate == 1e-5


def test_yaml_syntax_error_names_the_line(tmp_path):
    with pytest.raises(ConfigError, match=r"exp\.yaml:2: invalid YAML"):
        load_config(write(tmp_path, "seed: 1\ntrain: max_steps: 3\n"))


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_an_empty_experiment_file_is_refused_not_read_as_the_defaults(tmp_path, content):
    # a config.yaml cut to 0 bytes by a crash used to train silently with the built-in defaults
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert str(refused.value) == f"{path}: empty file; not an experiment config"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("seed: 1\nseed: 2\n", "exp.yaml:2: duplicate key 'seed' (first at line 1)"),
        ("- a\n- b\n", "expected a mapping of config keys"),
        ("train: {max_steps: 3\n", "exp.yaml:2: invalid YAML"),
    ],
)
def test_a_damaged_experiment_file_is_refused_with_its_name(tmp_path, content, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(write(tmp_path, content))


def test_an_experiment_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"exp\.yaml: not UTF-8 text \(byte 9\)"):
        load_config(path)


def test_a_yaml_error_in_an_override_is_a_config_error_naming_the_option():
    with pytest.raises(ConfigError, match=r"^-o seed:1: invalid YAML"):
        config_from_dict({}, ["seed=[1, 2"])
    with pytest.raises(ConfigError, match=r"^-o data\.path:1: duplicate key 'a'"):
        config_from_dict({}, ["data.path={a: 1, a: 2}"])


def test_dotted_overrides_are_parsed_as_yaml_and_checked():
    config = config_from_dict(
        {}, ["train.learning_rate=3e-4", "model.n_layer=3", "data.path=x.txt"]
    )
    assert config.train.learning_rate == 3e-4
    assert config.model.n_layer == 3
    assert config.data.path == "x.txt"
    with pytest.raises(ConfigError, match="did you mean 'train.max_steps'"):
        config_from_dict({}, ["train.max_step=3"])
    with pytest.raises(ConfigError, match="expected key=value"):
        config_from_dict({}, ["train.max_steps"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "train.per_device_train_batch_size=0",
            r"must be > 0, got 0 \(train.per_device_train_batch_size\)",
        ),
        (
            "train.precision=fp8",
            r"expected auto, bf16, fp16 or fp32, got 'fp8' \(train.precision\)$",
        ),
        ("train.learning_rate=-0.1", r"must be >= 0, got -0.1 \(train.learning_rate\)"),
        ("train.learning_rate=.nan", r"must be a finite number, got nan \(train.learning_rate\)"),
        ("model.n_embd=130", r"must be divisible by model.n_head \(4\), got 130 \(model.n_embd\)"),
        ("task=regression", r"expected lm, classify or multitask, got 'regression' \(task\)$"),
    ],
)
def test_bad_values_are_rejected_with_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict({}, [override])


def test_config_is_frozen():
    config = config_from_dict({})
    with pytest.raises(AttributeError):
        config.train.learning_rate = 1.0  # type: ignore[misc]


def test_saved_config_loads_back_identical(tmp_path):
    config = load_config(EXPERIMENTS / "rt_polarity.yaml", ["train.learning_rate=5e-4"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config


def test_every_field_is_documented():
    text = describe_config()
    for line in text.splitlines():
        if "=" in line:
            assert line.split("#", 1)[1].strip(), f"undocumented: {line}"
    assert "train.learning_rate" in text


def test_objective_direction_follows_the_metric_name():
    assert not config_from_dict({}).objective_greater_is_better
    assert config_from_dict(
        {"task": "classify", "eval": {"metric_for_best_model": "val_accuracy"}}
    ).objective_greater_is_better


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.per_device_train_batch_size=1000000000", "sane limit"),
        ("data.block_size=1000000", "sane limit"),
        ("model.n_layer=100000", "sane limit"),
        ("seed=-1", "must be in [0, 2**32), got -1 (seed)"),
        ("seed=18446744073709551616", "(seed)"),
        ("train.adam_beta2=1.0", "must be in [0, 1), got 1.0 (train.adam_beta2)"),
        ("model.dropout=1.0", "must be in [0, 1), got 1.0 (model.dropout)"),
    ],
)
def test_sizes_and_seeds_beyond_sane_limits_are_refused(override, message):
    with pytest.raises(ConfigError) as caught:
        config_from_dict({}, [override])
    assert message in str(caught.value)


def test_a_model_whose_weights_exceed_this_machines_memory_is_refused():
    from runner.config import physical_memory_bytes

    memory = physical_memory_bytes()
    if memory is None:
        pytest.skip("os.sysconf does not tell this machine's memory")
    # within every size limit, but 1024 layers of width 65536 are ~53e12 parameters (200 TB)
    with pytest.raises(
        ConfigError, match=r"GiB in fp32, more than this machine's .*\(model.n_embd\)"
    ):
        config_from_dict({}, ["model.n_layer=1024", "model.n_embd=65536", "model.n_head=64"])
    # a pretrained model's size is its own: the limit is not applied
    config_from_dict({"model": {"pretrained": "x"}})


def test_paths_in_an_experiment_file_are_relative_to_it_and_overrides_to_the_current_folder(
    tmp_path, monkeypatch
):
    (tmp_path / "exps").mkdir()
    experiment = tmp_path / "exps" / "e.yaml"
    experiment.write_text("data: {path: ../data/c.txt, cache_dir: cache}\nmodel: {pretrained: m}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(experiment)
    assert config.data.path == str(tmp_path / "data" / "c.txt")
    assert config.data.cache_dir == str(tmp_path / "exps" / "cache")
    assert config.model.pretrained == str(tmp_path / "exps" / "m")
    config = load_config(experiment, ["data.path=mine.txt", "data.cache_dir=/abs/cache"])
    assert config.data.path == str(elsewhere / "mine.txt")
    assert config.data.cache_dir == "/abs/cache"
    # the null path (the standard library) stays null; output_dir stays as written
    assert load_config(experiment, ["data.path=null"]).data.path is None
