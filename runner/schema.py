"""One check of one value against what its key allows: the schema of every input of hpo.

The runner's config fields (runner.config: the annotation is the kind, the range is in the
field's metadata), the search drivers' options (hpo's Option tables) and a space file's scalar
entries (hpo.space) each declare an Allowed and call checked(). So every value is read by the
same rules, and every refusal has the same shape, `SOURCE: expected X, got V (KEY)` or
`SOURCE: must be >= L, got V (KEY)`:

    checked("1e-3", Allowed(kind=float, low=0), "train.learning_rate", fail)   # 0.001
    checked(0, Allowed(kind=int, low=2), "driver.reduction_factor", fail)
    # raises fail's error: "space.yaml: must be >= 2, got 0 (driver.reduction_factor)"

What YAML leaves ambiguous is decided here, once: YAML 1.1 reads 1e-3 (no dot) as text, which
is a fine float; 1.0 is a fine int; a bool is never a number; a float is finite. What depends
on several values (n_embd divisible by n_head, grace_period <= max_steps) is not declared: it
stays a named rule function beside the section it checks.
"""

from __future__ import annotations

import functools
import math
import operator
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from runner.errors import ConfigError
from runner.yaml_io import excerpt

Fail = Callable[[str, str], Exception]  # fail(key, problem) -> the error to raise


@dataclass(frozen=True, kw_only=True)
class Allowed:
    """What a key allows: a kind, a range, and words valid besides the kind."""

    # bool, int, float or str; a Literal of the choices; `X | None` where null is valid; a
    # tuple of kinds, any of which will do; None: any value
    kind: Any = None
    choices: tuple[Any, ...] | None = None  # the valid values (a Literal kind's, or these)
    low: float | None = None  # the smallest valid number (>= low)
    above: float | None = None  # or the number every valid one is above (> above)
    high: float | None = None  # the largest valid number (<= high)
    below: float | None = None  # or the number every valid one is below (< below)
    also: tuple[Any, ...] = ()  # words valid besides the kind, e.g. "auto" for a number
    # a sane upper limit, said as such in the message: far beyond any real use (GPT-2 XL has 48
    # layers, 25 heads, 1600 dims, 1024 positions, a 50k vocabulary), low enough that a typo
    # such as per_device_train_batch_size: 1000000000 is refused before memory is allocated
    limit: float | None = None


# seeds are whole numbers 0 <= seed < 2**32, what numpy's and torch's generators take: a
# trial's seed, a driver's (driver.seed) and --seed
SEED_LIMIT = 2**32
SEED = Allowed(kind=int, low=0, below=SEED_LIMIT)


def checked(value: Any, allowed: Allowed, key: str, fail: Fail) -> Any:
    """value as its kind (1e-3 read as text becomes 0.001), or raise fail(key, problem)."""
    kinds, choices, optional = _parts(allowed.kind)
    choices = allowed.choices if allowed.choices is not None else choices
    if (value is None and optional) or any(_same(value, word) for word in allowed.also):
        return value
    if choices is not None:
        if not any(_same(value, choice) for choice in choices):
            words = [str(c) for c in choices] + [str(w) for w in allowed.also]
            raise fail(key, f"expected {_alternatives(words, optional)}, got {excerpt(value)}")
        return value
    typed = value
    if kinds:
        typed = next((v for v in (_as(kind, value) for kind in kinds) if v is not _NOT), _NOT)
        if typed is _NOT:
            words = _kind_words(kinds) + [str(w) for w in allowed.also]
            raise fail(key, f"expected {_alternatives(words, optional)}, got {excerpt(value)}")
    _in_range(typed, allowed, key, fail, shown=typed if isinstance(value, str) else value)
    return typed


def failing(source: str, error: type[Exception] = ConfigError) -> Fail:
    """The fail of a file: `error("SOURCE: problem (KEY)")`."""

    def fail(key: str, problem: str) -> Exception:
        return error(f"{source}: {problem} ({key})")

    return fail


def _in_range(value: Any, allowed: Allowed, key: str, fail: Fail, shown: Any) -> None:
    """Raise fail(...) unless value is finite and in range; `shown` is the value as written
    (1, not 1.0; but 0.001 for the text 1e-3)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    got = excerpt(shown)
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(key, f"must be a finite number, got {got}")
    lower, upper = _ends(allowed)
    for sign, bound in (lower, upper):
        if bound is not None and not _SIGNS[sign][0](value, bound):
            raise fail(key, f"must be {_range_words(lower, upper)}, got {got}")
    if allowed.limit is not None and value > allowed.limit:
        raise fail(key, f"must be <= {_bound(allowed.limit)} (a sane limit), got {got}")


def described(allowed: Allowed) -> str:
    """What a declaration allows beyond its kind, in the words of its refusals: "in [0, 1)",
    ">= 1", "> 0; at most 65_536, a sane limit"; "" when it declares no range (`--help-config`)."""
    lower, upper = _ends(allowed)
    parts = [_range_words(lower, upper)] if lower[1] is not None or upper[1] is not None else []
    if allowed.limit is not None:
        parts.append(f"at most {_bound(allowed.limit)}, a sane limit")
    return "; ".join(parts)


Bound = tuple[str, float | None]  # (its sign, the number), e.g. (">=", 0)


def _ends(allowed: Allowed) -> tuple[Bound, Bound]:
    """The lower and the upper bound of a declaration (a number None where it has none)."""
    lower = (">=", allowed.low) if allowed.low is not None else (">", allowed.above)
    upper = ("<=", allowed.high) if allowed.high is not None else ("<", allowed.below)
    return lower, upper


def _range_words(lower: Bound, upper: Bound) -> str:
    """The range as refusals and --help-config say it: "in [0, 1)" with both ends, else one
    end: ">= 1"."""
    if lower[1] is not None and upper[1] is not None:
        low_end, high_end = _SIGNS[lower[0]][1], _SIGNS[upper[0]][1]
        return f"in {low_end}{_bound(lower[1])}, {_bound(upper[1])}{high_end}"
    sign, number = lower if lower[1] is not None else upper
    return f"{sign} {_bound(number)}"


# a bound's sign: its comparison, and its end of an interval
_SIGNS = {
    ">=": (operator.ge, "["),
    ">": (operator.gt, "("),
    "<=": (operator.le, "]"),
    "<": (operator.lt, ")"),
}
_NOT = object()  # _as: the value is not of this kind


def _as(kind: Any, value: Any) -> Any:
    """value as kind, or _NOT."""
    if kind is bool or isinstance(value, bool):
        return value if kind is bool and isinstance(value, bool) else _NOT
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)  # 1.0 is a fine int
        return value if isinstance(value, int) else _NOT
    if kind is float:
        if isinstance(value, int | float | str):  # YAML 1.1 reads 1e-3 (no dot) as text
            try:
                return float(value)
            except (ValueError, OverflowError):  # not a number; an int beyond float's range
                return _NOT
        return _NOT
    return value if isinstance(value, kind) else _NOT


@functools.cache
def _parts(kind: Any) -> tuple[tuple[Any, ...], tuple[Any, ...] | None, bool]:
    """(the kinds, the choices of a Literal or None, whether null is valid) of a kind."""
    if kind is None:
        return (), None, False
    members = kind if isinstance(kind, tuple) else (kind,)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        members = typing.get_args(kind)
    optional = type(None) in members
    members = tuple(m for m in members if m is not type(None))
    literals = [m for m in members if typing.get_origin(m) is Literal]
    if literals:
        return (), tuple(c for m in literals for c in typing.get_args(m)), optional
    return members, None, optional


def _same(value: Any, word: Any) -> bool:
    """Equal and of one type: 1 is not True, nor 1.0 the choice 1."""
    return type(value) is type(word) and value == word


def _kind_words(kinds: tuple[Any, ...]) -> list[str]:
    words: list[str] = []
    for kind in kinds:
        if kind is bool:
            words += ["true", "false"]
        elif kind is not int or float not in kinds:  # 1 is a fine float
            words.append(getattr(kind, "__name__", str(kind)))
    return words


def _alternatives(words: list[str], optional: bool) -> str:
    """The words as a message lists them: a; a or b; a, b or c (and null where valid)."""
    words = words + ["null"] if optional else words
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _bound(number: float) -> str:
    """A bound as a message writes it: 0, 0.5, 65_536, 2**32, 1e+15."""
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e15:
        number = int(number)
    if isinstance(number, float):
        return f"{number:g}"
    if number >= 2**31 and number & (number - 1) == 0:
        return f"2**{number.bit_length() - 1}"
    return f"{number:_}" if abs(number) >= 10_000 else str(number)
