"""runner.schema: one value against what its key allows, and the one shape of every refusal."""

from __future__ import annotations

import math
import re
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.config import describe_config
from runner.errors import ConfigError
from runner.schema import SEED, Allowed, checked, described, failing

FAIL = failing("f.yaml")
SHAPE = re.compile(r"f\.yaml: (expected .+|must be .+), got .+ \(k\)")


def refusal(value, allowed: Allowed) -> str:
    with pytest.raises(ConfigError) as caught:
        checked(value, allowed, "k", FAIL)
    message = str(caught.value)
    assert SHAPE.fullmatch(message), message
    return message


@given(st.integers(-1000, 1000), st.integers(-1000, 1000), st.integers(-5000, 5000))
def test_an_int_in_range_is_accepted_and_one_outside_refused_in_the_one_shape(low, high, value):
    allowed = Allowed(kind=int, low=min(low, high), high=max(low, high))
    if min(low, high) <= value <= max(low, high):
        assert checked(value, allowed, "k", FAIL) == value
    else:
        assert refusal(value, allowed) == (
            f"f.yaml: must be in [{min(low, high)}, {max(low, high)}], got {value} (k)"
        )


@given(st.integers(-100, 100), st.booleans())
def test_one_bound_says_which_and_an_open_one_excludes_itself(value, open_):
    allowed = Allowed(kind=int, above=0) if open_ else Allowed(kind=int, low=0)
    if value > 0 or (value == 0 and not open_):
        assert checked(value, allowed, "k", FAIL) == value
    else:
        sign = ">" if open_ else ">="
        assert refusal(value, allowed) == f"f.yaml: must be {sign} 0, got {value} (k)"
    high = Allowed(kind=int, below=0) if open_ else Allowed(kind=int, high=0)
    if value < 0 or (value == 0 and not open_):
        assert checked(value, high, "k", FAIL) == value
    else:
        assert (
            refusal(value, high) == f"f.yaml: must be {'<' if open_ else '<='} 0, got {value} (k)"
        )


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_written_as_text_is_read_as_yaml_1_1_leaves_it(number):
    # YAML 1.1 reads 1e-3 (no dot) as text: the text of any finite float is that float
    assert checked(repr(number), Allowed(kind=float), "k", FAIL) == number
    assert checked(number, Allowed(kind=float), "k", FAIL) == number


@given(st.integers(-(2**60), 2**60))
def test_a_whole_float_is_a_fine_int_and_an_int_a_fine_float(number):
    assert checked(float(number), Allowed(kind=int), "k", FAIL) == int(float(number))
    assert type(checked(float(number), Allowed(kind=int), "k", FAIL)) is int
    assert checked(number, Allowed(kind=float), "k", FAIL) == float(number)


@pytest.mark.parametrize("kind", [int, float, int | None, float | None])
@pytest.mark.parametrize("flag", [True, False])
def test_a_bool_is_never_a_number(kind, flag):
    assert "expected " in refusal(flag, Allowed(kind=kind))


@pytest.mark.parametrize(
    ("value", "allowed", "message"),
    [
        ("many", Allowed(kind=int), "expected int, got 'many'"),
        (1.5, Allowed(kind=int), "expected int, got 1.5"),
        ("5", Allowed(kind=int), "expected int, got '5'"),
        ("abc", Allowed(kind=float), "expected float, got 'abc'"),
        (10**400, Allowed(kind=float), "expected float, got"),
        ("yes", Allowed(kind=bool), "expected true or false, got 'yes'"),
        (1, Allowed(kind=bool | None), "expected true, false or null, got 1"),
        (3, Allowed(kind=str), "expected str, got 3"),
        ("x", Allowed(kind=int | None), "expected int or null, got 'x'"),
        ("many", Allowed(kind=int, also=("auto",)), "expected int or auto, got 'many'"),
        ("fp8", Allowed(kind=Literal["auto", "fp32"]), "expected auto or fp32, got 'fp8'"),
        ("x", Allowed(choices=("a", "b", "c")), "expected a, b or c, got 'x'"),
        (None, Allowed(kind=int), "expected int, got None"),
        (float("nan"), Allowed(kind=float), "must be a finite number, got nan"),
        ("inf", Allowed(kind=float, low=0), "must be a finite number, got inf"),
        (-1, Allowed(kind=float, low=0), "must be >= 0, got -1"),  # as written: -1, not -1.0
        ("-1e-3", Allowed(kind=float, low=0), "must be >= 0, got -0.001"),
        (1.0, Allowed(kind=float, low=0, below=1), "must be in [0, 1), got 1.0"),
        (0, Allowed(kind=float, above=0, high=1), "must be in (0, 1], got 0"),
        (0.75, Allowed(kind=float, low=0, high=0.5), "must be in [0, 0.5], got 0.75"),
        (10**9, Allowed(kind=int, low=1, limit=65_536), "must be <= 65_536 (a sane limit)"),
        (2**32, SEED, "must be in [0, 2**32), got 4294967296"),
        (1e16, Allowed(kind=float, low=-1e15, high=1e15), "must be in [-1e+15, 1e+15], got 1e+16"),
    ],
)
def test_what_each_refusal_says(value, allowed, message):
    assert message in refusal(value, allowed)


def test_words_null_and_choices_pass_as_they_are():
    assert checked("auto", Allowed(kind=int, low=0, also=("auto",)), "k", FAIL) == "auto"
    assert checked(None, Allowed(kind=int | None, low=1), "k", FAIL) is None
    assert checked("fp32", Allowed(kind=Literal["auto", "fp32"]), "k", FAIL) == "fp32"
    assert checked(0.5, Allowed(), "k", FAIL) == 0.5  # no kind: anything
    # a choice is equal and of the same type: 1 is not True, nor 1.0 the choice 1
    assert "expected 1 or 2" in refusal(True, Allowed(choices=(1, 2)))
    assert "expected 1 or 2" in refusal(1.0, Allowed(choices=(1, 2)))


def test_the_fail_of_the_caller_builds_the_error():
    class Mine(Exception):
        pass

    with pytest.raises(Mine, match=r"^driver\.x/must be >= 2, got 0$"):
        checked(0, Allowed(kind=int, low=2), "driver.x", lambda k, p: Mine(f"{k}/{p}"))
    assert math.isclose(checked("2.5", Allowed(kind=float, low=2), "k", FAIL), 2.5)


def test_every_config_default_is_within_what_its_field_declares():
    import dataclasses

    from runner.config import TrialConfig, config_from_dict, config_to_dict

    # every field, defaults included, read back through its declaration: nothing refused
    assert config_from_dict(config_to_dict(TrialConfig())) == TrialConfig()
    declared = [
        f.name
        for section in dataclasses.fields(TrialConfig)
        if dataclasses.is_dataclass(section.default_factory)
        for f in dataclasses.fields(section.default_factory)
        if "allowed" in f.metadata
    ]
    assert len(declared) >= 45, declared  # the ranges are declared, not hand-checked


@pytest.mark.parametrize(
    ("allowed", "words"),
    [
        (Allowed(kind=float, low=0, below=1), "in [0, 1)"),
        (Allowed(kind=int, low=1), ">= 1"),
        (Allowed(kind=int, above=0, limit=65536), "> 0; at most 65_536, a sane limit"),
        (Allowed(kind=str), ""),
    ],
)
def test_a_declaration_describes_its_range_in_the_words_of_its_refusals(allowed, words):
    assert described(allowed) == words


def test_help_config_shows_each_declared_range():
    text = describe_config()
    assert "model.dropout = 0.0  # " in text and "(in [0, 1))" in text
    assert "(> 0; at most 65_536, a sane limit)" in text
