"""The helpers behind the bad-input table: printable text, safe names, checkpoint size limits."""

import pytest
import torch

from hpo.terminal import check_param_key, check_study_name, printable
from runner import checkpoint as checkpoint_module
from runner.checkpoint import (
    MAX_CHECKPOINT_BYTES,
    checkpoint_byte_limit,
    load_checkpoint,
    save_checkpoint,
)
from runner.config import load_config
from runner.errors import CheckpointError


@pytest.mark.parametrize(
    "raw, shown",
    [
        ("plain text", "plain text"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),
        ("line\nbreak\ttab", "line\\x0abreak\\x09tab"),
        ("osc\x1b]52;c;aGk=\x07", "osc\\x1b]52;c;aGk=\\x07"),
        ("rtl\u202eevil", "rtl\\u202eevil"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("c1\x9bcsi", "c1\\x9bcsi"),
        ("café ünïcode 学", "café ünïcode 学"),
    ],
)
def test_printable_escapes_what_a_terminal_would_obey(raw, shown):
    assert printable(raw) == shown


def test_printable_bounds_the_length_even_of_a_huge_input():
    text = printable("\x1b" * 10_000_000, limit=1000)
    assert len(text) == 1000 and text.endswith("...")


@pytest.mark.parametrize("name", ["lr_wd", "pipeline", "a.b-c_1", "x" * 100, "0"])
def test_safe_study_names_are_accepted(name):
    assert check_study_name(name) is None


@pytest.mark.parametrize(
    "name", ["", ".", "..", ".hidden", "-flag", "a/b", "a b", "a\x1bb", "é", "x" * 101, "a;b"]
)
def test_unsafe_study_names_are_refused(name):
    assert check_study_name(name)


@pytest.mark.parametrize("key", ["train.learning_rate", "x", "model.n_layer", "a-b.c_d"])
def test_dotted_param_keys_are_accepted(key):
    assert check_param_key(key) is None


@pytest.mark.parametrize("key", ["", "a..b", ".a", "a.", "a b", "a\x1b", 12, "a/b", "k" * 201])
def test_other_param_keys_are_refused(key):
    assert check_param_key(key)


def test_the_checkpoint_limit_follows_the_model_size():
    tiny = load_config("experiments/lm_tiny.yaml")
    small = load_config("experiments/gpt2_small.yaml")
    assert checkpoint_byte_limit(tiny) < checkpoint_byte_limit(small) <= MAX_CHECKPOINT_BYTES
    assert checkpoint_byte_limit(None) == MAX_CHECKPOINT_BYTES
    pretrained = load_config("experiments/lm_tiny.yaml", ["model.pretrained=somewhere"])
    assert checkpoint_byte_limit(pretrained) == MAX_CHECKPOINT_BYTES


def test_a_checkpoint_larger_than_the_limit_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    path = tmp_path / "big.pt"
    save_checkpoint(path, {"weights": torch.zeros(5_000_000)})  # 20 MB, stored
    assert load_checkpoint(path)["weights"].numel() == 5_000_000
    monkeypatch.setattr(checkpoint_module, "MAX_CHECKPOINT_BYTES", 10_000_000)
    with pytest.raises(CheckpointError, match="holds 20,00"):
        load_checkpoint(path)
