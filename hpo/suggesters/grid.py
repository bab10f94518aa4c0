"""Grids over a space: counted before they are built, and refused over MAX_GRID_POINTS.

A grid sampler (Optuna's `sampler: grid`, Ray's `searcher: grid`) lists every value of every
searched param and walks their product. An int range of 1e9 values is one line in a space file
and a MemoryError when listed, so the count comes first, from Distribution.n_values, and a
grid of more than MAX_GRID_POINTS points (or a param with more values than that) is a
SpaceError naming the param and the count, before anything is listed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

from hpo.space import Categorical, Float, Int, SearchSpace, SpaceError

MAX_GRID_POINTS = 100_000  # at a few seconds per trial, already more than a day of search


def n_grid_values(distribution: Any) -> int | None:
    """How many values a grid takes from `distribution`; None for a continuous range."""
    if isinstance(distribution, Categorical):
        return len(distribution.choices)
    if isinstance(distribution, Float | Int):
        return distribution.n_values
    return None


def grid_values(distribution: Any) -> list[Any] | None:
    """Every value of a finite range (choices, or a stepped range); None for a continuous one.

    Callers check the count first (check_grid); this refuses a range too large to list anyway.
    """
    count = n_grid_values(distribution)
    if count is None:
        return None
    if count > MAX_GRID_POINTS:
        raise SpaceError(f"a grid over {count:,} values; at most {MAX_GRID_POINTS:,}")
    if isinstance(distribution, Categorical):
        return list(distribution.choices)
    return [distribution.value_at(i) for i in range(count)]


def check_grid(
    space: SearchSpace,
    fail: Callable[[str, str], SpaceError],
    continuous_problem: str,
    params: Sequence[Any] | None = None,
) -> int:
    """The number of grid points of the space's searched params; raises through `fail` (naming
    the param) when one is continuous, or when the product exceeds MAX_GRID_POINTS."""
    total = 1
    for param in space.searched if params is None else params:
        count = n_grid_values(param.distribution)
        if count is None:
            raise fail(f"params.{param.name}", continuous_problem)
        total *= count
        if total > MAX_GRID_POINTS:
            counts = [n_grid_values(p.distribution) or 1 for p in space.searched]
            size = math.prod(counts)
            raise fail(
                f"params.{param.name}",
                f"a grid of {size:,} points, more than {MAX_GRID_POINTS:,}; "
                "narrow the ranges, add a step, or use another sampler",
            )
    return total


def grid_points(space: SearchSpace) -> list[dict[str, Any]]:
    """Every distinct trial of the grid: inactive params dropped, so no point repeats.

    Callers check the count first (check_grid)."""
    names = [p.name for p in space.searched]
    points: list[dict[str, Any]] = []
    listed = (grid_values(p.distribution) or [] for p in space.searched)
    for combo in itertools.product(*listed):
        point = space.trial_params(dict(zip(names, combo, strict=True)))
        if point not in points:
            points.append(point)
    return points
