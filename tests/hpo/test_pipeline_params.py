"""params.yaml's values go through runner.schema's one check, as every other input does."""

from __future__ import annotations

import pytest
import yaml

from hpo.pipeline_params import read_params, stage_command
from runner.errors import ConfigError

PARAMS = {
    "prepare": {"experiment": "experiments/lm_tiny.yaml"},
    "search": {
        "space": "space.yaml",
        "driver": "optuna",
        "study": "pipeline",
        "trials": 2,
        "max_steps": 30,
        "seed": 0,
    },
    "train": {"max_steps": 30},
}


def write(tmp_path, **search):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({**PARAMS, "search": {**PARAMS["search"], **search}}))
    return path


def test_a_whole_float_count_is_read_as_an_int_and_reaches_the_command_as_one(tmp_path):
    params = read_params(write(tmp_path, trials=3.0, seed=7.0), "search")
    assert params["search.trials"] == 3 and type(params["search.trials"]) is int
    command = stage_command("search", params)
    assert "--trials=3" in command and "--seed=7" in command
    assert params["search.track"] is True, "track is optional and defaults to true"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seed": 2**32}, "must be in [0, 2**32), got 4294967296 (search.seed)"),
        ({"trials": 0}, "must be >= 1, got 0 (search.trials)"),
        ({"trials": "6"}, "expected int, got '6' (search.trials)"),
        ({"track": "yes"}, "expected true or false, got 'yes' (search.track)"),
        ({"driver": "hyperopt"}, "got 'hyperopt' (search.driver)"),
    ],
)
def test_a_wrong_value_is_refused_in_the_one_shape_with_its_line(tmp_path, change, message):
    path = write(tmp_path, **change)
    with pytest.raises(ConfigError) as refused:
        read_params(path, "search")
    text = str(refused.value)
    assert text.startswith(f"{path}:") and text.endswith(message), text
