"""argparse types and shared options for hpo's flags: a value of the wrong kind is refused while
parsing, in one line. The ranges are runner.schema's declarations, the one check every input
goes through; reading the flag's text as a number is argparse's part.

argparse names the type in its message ("invalid positive integer value: '0'"), hence the
__name__ of each.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from runner.schema import Allowed, checked


def _flag_type(read: Callable[[str], Any], allowed: Allowed, name: str) -> Callable[[str], Any]:
    """An argparse type: the flag's text read as a number, then runner.schema's one check of
    its range (and finiteness), as a space file's or config's value is checked."""

    def parse(text: str) -> Any:
        def refuse(key: str, problem: str) -> ValueError:
            return ValueError(f"{text}: {problem}")

        return checked(read(text), allowed, "", refuse)

    parse.__name__ = name  # argparse names the type in its error
    return parse


# an integer >= 1
positive_int = _flag_type(int, Allowed(kind=int, low=1), "positive integer")
# an integer >= 0 (a seed, a GPU count)
non_negative_int = _flag_type(int, Allowed(kind=int, low=0), "non-negative integer")
# a finite number > 0 (a tolerance: nan would accept every output)
finite_positive_float = _flag_type(float, Allowed(kind=float, above=0), "finite number > 0")


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
