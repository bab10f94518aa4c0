"""The search drivers by the name `--driver` takes; a driver's module is imported only when used.

Each driver module declares OPTIONS (what a space file's `driver:` section may set),
check_space(space, fail) (what that driver cannot search), search_method(space, study) (its
sampler and pruner, see methods.py) and its Driver class; the module
imports its library (optuna, bayes_opt, ray) only inside the functions that run a study.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from runner.errors import UserInputError

if TYPE_CHECKING:
    from hpo.drivers.base import Driver, Option, StudySpec
    from hpo.space import SearchSpace, SpaceError

# name -> (module, class); a driver is one module of hpo/drivers/ or, like ray, a package.
DRIVERS: dict[str, tuple[str, str]] = {
    "optuna": ("hpo.drivers.optuna_driver", "OptunaDriver"),
    "random": ("hpo.drivers.random_search", "RandomSearchDriver"),
    "bo": ("hpo.drivers.bo_driver", "BayesOptDriver"),
    "ray": ("hpo.drivers.ray_tune", "RayDriver"),
}
# name -> the extra of pyproject.toml it needs (the others need only core hpo)
EXTRA_OF: dict[str, str] = {"ray": "ray"}


def driver_module(name: str) -> ModuleType | None:
    """The driver's module, or None when it is not part of this installation."""
    if name not in DRIVERS:
        raise UserInputError(f"unknown driver '{name}'; choose one of {', '.join(DRIVERS)}")
    module = DRIVERS[name][0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name == module:
            return None
        raise


def available_drivers() -> list[str]:
    """Names of the drivers this installation has (with their extra, where they need one)."""
    from hpo.extras import has_extra

    return [
        name
        for name in DRIVERS
        if driver_module(name) is not None and (name not in EXTRA_OF or has_extra(EXTRA_OF[name]))
    ]


def require_driver(name: str) -> None:
    """MissingExtra `--driver ray needs the ray extra: ...` when the driver's library is absent."""
    from hpo.extras import require_extra

    if name in EXTRA_OF:
        require_extra(EXTRA_OF[name], f"--driver {name}")


def get_driver(name: str) -> Driver:
    """A driver by name, e.g. get_driver("optuna").run(space, study, objective)."""
    module = driver_module(name)
    if module is None:
        raise UserInputError(f"driver '{name}' is not available in this installation")
    require_driver(name)
    return getattr(module, DRIVERS[name][1])()


def resolve_driver_options(
    name: str, raw: Mapping[str, Any], fail: Callable[[str, str], SpaceError]
) -> dict[str, Any]:
    """Validate a space file's `driver:` section for driver `name`; returns its full options."""
    from hpo.drivers.base import resolve_options

    if driver_module(name) is None:
        raise UserInputError(f"driver '{name}' is not available in this installation")
    require_driver(name)  # a space loads before any work: the first place a driver is named
    tables: dict[str, Mapping[str, Option] | None] = {}
    for other in DRIVERS:
        module = driver_module(other)
        tables[other] = None if module is None else module.OPTIONS
    return resolve_options(name, tables, raw, fail, getattr(driver_module(name), "SHARED", None))


def check_space(space: SearchSpace, fail: Callable[[str, str], SpaceError]) -> None:
    """Raise (through fail) when the space's driver cannot search it, e.g. grid over a range."""
    driver_module(space.driver).check_space(space, fail)


def search_method(space: SearchSpace, study: StudySpec) -> dict[str, Any]:
    """The sampler and pruner the study runs with, and their settings (hpo.drivers.methods):
    summary.json's `method` and the first line of `hpo search`."""
    return driver_module(space.driver).search_method(space, study)
