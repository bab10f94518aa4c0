"""Numbers in space files: what counts as one, and the space's scalar entries declared for
runner.schema (which reads YAML text such as 1e-5 as a number): a range's ends and step, the
budget's counts, durations in seconds."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hpo.space.errors import SpaceError
from runner.schema import Allowed, checked

Fail = Callable[[str, str], SpaceError]  # fail(key, problem): the error to raise


# Bounds beyond this are refused: a step count or a log10 of such numbers overflows a float, and
# no hyperparameter needs them. 1e15 is still exact as an int in a float (< 2**53).
MAX_MAGNITUDE = 1e15


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool (an int too large for a float is not finite)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_multiple(span: float, step: float) -> bool:
    """Whether span is a whole number of steps, up to float noise."""
    ratio = span / step
    return abs(ratio - round(ratio)) <= 1e-9 * max(1.0, abs(ratio))


def number_or_none(text: str) -> float | None:
    try:
        return float(text)
    except (ValueError, OverflowError):
        return None


NUMBER = Allowed(kind=float, low=-MAX_MAGNITUDE, high=MAX_MAGNITUDE)  # a range's low or high
STEP = Allowed(kind=float, above=0, limit=MAX_MAGNITUDE)
DURATION = Allowed(kind=float, above=0)  # budget.timeout, before its unit
COUNT = Allowed(kind=int | None, low=1)  # the budget's trials or steps; null: no end
SECONDS = Allowed(kind=float, low=0)  # command.kill_after


def parse_number(value: Any, key: str, fail: Fail) -> float:
    """A finite number from a number or numeric text (YAML 1.1 reads 1e-5 as text)."""
    return checked(value, NUMBER, key, fail)


def parse_duration(value: Any, fail: Fail) -> float | None:
    """Seconds from a number or text such as 90, '45s', '30m', '2h'."""
    if value is None:
        return None
    scale = 1.0
    if isinstance(value, str) and value[-1:] in ("s", "m", "h") and len(value) > 1:
        value, scale = value[:-1], {"s": 1.0, "m": 60.0, "h": 3600.0}[value[-1]]
    return checked(value, DURATION, "budget.timeout", fail) * scale
