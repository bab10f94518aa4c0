"""The ranges a param is searched over: Float, Int, Categorical, or Fixed (never searched).

A numeric range maps to a sampling coordinate (sample_bounds, from_sample, to_sample), which is
log10 of the value on a log scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hpo.space.numeric import is_multiple, is_number


@dataclass(frozen=True)
class Float:
    """A real number in [low, high]; log: searched on a log scale; step: only low + k * step."""

    low: float
    high: float
    log: bool = False
    step: float | None = None

    def contains(self, value: Any) -> bool:
        if not is_number(value) or not self.low <= value <= self.high:
            return False
        return self.step is None or is_multiple(value - self.low, self.step)

    @property
    def n_values(self) -> int | None:
        """How many values a stepped range holds (None: continuous)."""
        return None if self.step is None else round((self.high - self.low) / self.step) + 1

    def value_at(self, index: int) -> float:
        # Rounding removes float noise such as 0.30000000000000004 from low + k * step.
        return float(f"{min(self.low + index * self.step, self.high):.12g}")

    def sample_bounds(self) -> tuple[float, float]:
        """Bounds of the coordinate a sampler draws uniformly: log10 of the value when log."""
        return (math.log10(self.low), math.log10(self.high)) if self.log else (self.low, self.high)

    def from_sample(self, x: float) -> float:
        value = 10.0**x if self.log else x
        value = min(max(value, self.low), self.high)
        if self.step is not None:
            value = self.value_at(round((value - self.low) / self.step))
        return value

    def to_sample(self, value: float) -> float:
        return math.log10(value) if self.log else value


@dataclass(frozen=True)
class Int:
    """An integer in [low, high]; log: searched on a log scale; step: only low + k * step."""

    low: int
    high: int
    log: bool = False
    step: int = 1

    def contains(self, value: Any) -> bool:
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and self.low <= value <= self.high
            and (value - self.low) % self.step == 0
        )

    @property
    def n_values(self) -> int | None:
        """How many values the range holds (None: log scale, searched as continuous)."""
        return None if self.log else (self.high - self.low) // self.step + 1

    def value_at(self, index: int) -> int:
        return min(self.low + index * self.step, self.high)

    def sample_bounds(self) -> tuple[float, float]:
        # Half a unit beyond each end gives the end values their fair share after rounding.
        if self.log:
            return math.log10(self.low - 0.5), math.log10(self.high + 0.5)
        return self.low - 0.5, self.high + 0.5

    def from_sample(self, x: float) -> int:
        value = 10.0**x if self.log else x
        value = min(max(round(value), self.low), self.high)
        return self.value_at(round((value - self.low) / self.step))

    def to_sample(self, value: int) -> float:
        return math.log10(value) if self.log else float(value)


@dataclass(frozen=True)
class Categorical:
    """One of a list of scalar choices (str, int, float, bool or null)."""

    choices: tuple[Any, ...]

    def contains(self, value: Any) -> bool:
        return any(value == c and type(value) is type(c) for c in self.choices)


@dataclass(frozen=True)
class Fixed:
    """A value set in every trial, never searched."""

    value: Any

    def contains(self, value: Any) -> bool:
        return value == self.value


Distribution = Float | Int | Categorical | Fixed
