"""The search drivers by the name `--driver` takes; a driver's module is imported only when used.

The table of names and the option checks live in hpo.space.driver_options (a space file is
checked against its driver's options while it is parsed); they are re-exported here.

Each driver module declares OPTIONS (what a space file's `driver:` section may set),
check_space(space, fail) (what that driver cannot search), search_method(space, study) (its
sampler and pruner, see hpo/methods.py) and its Driver class; the module
imports its library (optuna, bayes_opt, ray) only inside the functions that run a study.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.methods import search_method
from hpo.space.driver_options import (
    DRIVERS,
    EXTRA_OF,
    available_drivers,
    check_space,
    driver_module,
    require_driver,
    resolve_driver_options,
)
from runner.errors import UserInputError

if TYPE_CHECKING:
    from hpo.drivers.base import Driver


def get_driver(name: str) -> Driver:
    """A driver by name, e.g. get_driver("optuna").run(space, study, objective)."""
    module = driver_module(name)
    if module is None:
        raise UserInputError(f"driver '{name}' is not available in this installation")
    require_driver(name)
    return getattr(module, DRIVERS[name][1])()


__all__ = [
    "DRIVERS",
    "EXTRA_OF",
    "available_drivers",
    "check_space",
    "driver_module",
    "get_driver",
    "require_driver",
    "resolve_driver_options",
    "search_method",
]
