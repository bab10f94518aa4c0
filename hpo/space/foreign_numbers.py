"""Numbers in a foreign space (a W&B sweep, a Ray Tune-style space), as hpo's space takes them.

Shared by hpo.space.wandb_sweep and hpo.space.ray_space: a finite number (YAML 1.1 reads 1e-5 as
text), and the multiples of q in a range, which both tools draw for their q_ distributions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hpo.space.search_space import SpaceError
from runner.yaml_io import excerpt

# how a converter says what is wrong: fail(key of the original file, problem) -> the error
Fail = Callable[[str, str], SpaceError]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def finite_number(value: Any, key: str, fail: Fail) -> int | float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-5 as text
        try:
            value = float(value)
        except ValueError:
            pass
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise fail(key, f"expected a finite number, got {excerpt(value)}")
    return value


def rounded(value: float) -> float:
    return float(f"{value:.12g}")


def multiples(low: float, high: float, q: float, key: str, fail: Fail, whole: bool) -> dict:
    """The multiples of q in [low, high], what W&B's q_uniform and Ray's quniform/qrandint
    draw (round(x / q) * q), as hpo's stepped range."""
    if q <= 0 or (whole and not is_int(q)):
        raise fail(key, f"q must be a {'whole number ' if whole else 'number '}> 0, got {q!r}")

    def index(bound: float, up: bool) -> int:
        ratio = bound / q
        nearest = round(ratio)
        if abs(ratio - nearest) <= 1e-9 * max(1.0, abs(ratio)):
            return nearest
        return math.ceil(ratio) if up else math.floor(ratio)

    first, last = index(low, up=True), index(high, up=False)
    if last <= first:
        raise fail(key, f"fewer than two multiples of q={q!r} lie in [{low!r}, {high!r}]")
    if whole:
        return {"type": "int", "low": first * q, "high": last * q, "step": q}
    return {"type": "float", "low": rounded(first * q), "high": rounded(last * q), "step": q}
