"""Numbers in space files: what counts as one, YAML text read as one, durations in seconds."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpo.space.search_space import SpaceError

Fail = Callable[[str, str], "SpaceError"]  # fail(key, problem): the error to raise


def is_number(value: Any) -> bool:
    """A finite int or float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_multiple(span: float, step: float) -> bool:
    """Whether span is a whole number of steps, up to float noise."""
    ratio = span / step
    return abs(ratio - round(ratio)) <= 1e-9 * max(1.0, abs(ratio))


def number_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_number(value: Any, key: str, fail: Fail) -> float:
    """A finite number from a number or numeric text; else fail(key, ...)."""
    # YAML 1.1 reads `1e-5` (no dot) as a string: numeric text is accepted as a number.
    number = number_or_none(value) if isinstance(value, str) else value
    if not isinstance(number, int | float) or isinstance(number, bool):
        raise fail(key, f"expected a number, got {value!r}")
    if not math.isfinite(number):
        raise fail(key, f"must be a finite number, got {value!r}")
    return number


def parse_duration(value: Any, fail: Fail) -> float | None:
    """Seconds from a number or text such as 90, '45s', '30m', '2h'."""
    if value is None:
        return None
    scale = 1.0
    if isinstance(value, str) and value[-1:] in ("s", "m", "h"):
        value, scale = value[:-1], {"s": 1.0, "m": 60.0, "h": 3600.0}[value[-1]]
    seconds = parse_number(value, "budget.timeout", fail) * scale
    if seconds <= 0:
        raise fail("budget.timeout", f"must be > 0, got {seconds:g}")
    return seconds
