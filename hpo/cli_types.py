"""argparse types and shared options for hpo's flags: a value of the wrong kind is refused while
parsing, in one line.

argparse names the type in its message ("invalid positive integer value: '0'"), hence the
__name__ of each.
"""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


positive_int.__name__ = "positive integer"  # argparse names the type in its error


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a seed, a GPU count)."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


non_negative_int.__name__ = "non-negative integer"


def finite_positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (a tolerance: nan would accept every output)."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(text)
    return value


finite_positive_float.__name__ = "finite number > 0"


def add_data_overrides(parser: argparse.ArgumentParser) -> None:
    """`-o KEY=VALUE` for commands that read a checkpoint's own config and may change only where
    its data comes from (hpo evaluate, hpo quantize): one declaration, one help text."""
    parser.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="data settings to change, e.g. -o data.cache_dir=data/prepared",
    )
