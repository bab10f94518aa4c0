"""The `driver:` section of a space file, checked against the table of the driver it names.

Each driver module (DRIVERS below names them; hpo.drivers re-exports it) declares OPTIONS, a
table of Option, and check_space(space, fail) (what that driver cannot search). A space is
parsed for one driver (hpo.space.parsing), so this package must reach those tables; it does so
by the driver's name, importing the driver's module when first asked (importlib): drivers are
plugins found by name, and hpo.space imports no driver's code (the layers of
docs/architecture.md). A driver module that is absent (not part of this installation) reads as
None.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from hpo.extras import has_extra, require_extra
from hpo.space.errors import SpaceError
from runner.errors import UserInputError
from runner.schema import SEED_LIMIT, Allowed, checked

if TYPE_CHECKING:
    from hpo.space.search_space import SearchSpace


@dataclass(frozen=True)
class Option(Allowed):
    """A driver option a space file may set under `driver:`: its default and documentation,
    and what it allows (runner.schema.Allowed's kind or choices, low, high, also), checked by
    runner.schema.checked like every value of a config or a space."""

    default: Any
    doc: str


SEED = Option(
    None,
    "seed of the sampler: a seeded sequential run is reproducible",
    kind=int | None,
    low=0,
    below=SEED_LIMIT,
)


def resolve_options(
    driver: str,
    tables: Mapping[str, Mapping[str, Option] | None],
    raw: Mapping[str, Any],
    fail: Callable[[str, str], SpaceError],
    shared: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The driver's options: defaults, then the flat keys of `driver:`, then its own sub-section.

    tables holds every known driver's option table (None where that driver is not installed).
    A sub-section named after another driver is checked against that driver's table but not
    applied, so one space file serves every driver; except the options `shared` names per
    other driver (ray runs optuna's sampler and pruner: it takes those of `optuna:`), which
    apply after the flat keys and before the driver's own sub-section.
    """
    table = tables[driver] or {}
    resolved = {name: option.default for name, option in table.items()}
    if not isinstance(raw, Mapping):
        raise fail("driver", "expected a mapping of option: value")
    own: dict[str, Any] = {}
    borrowed: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in tables:
            resolved[key] = _checked(driver, table, key, value, f"driver.{key}", fail)
            continue
        if not isinstance(value, Mapping):
            raise fail(f"driver.{key}", f"expected a mapping of {key} option: value")
        for name, option_value in value.items():
            if tables[key] is not None:
                checked = _checked(
                    key, tables[key], name, option_value, f"driver.{key}.{name}", fail
                )
                if key == driver:
                    own[name] = checked
                elif name in (shared or {}).get(key, ()):
                    borrowed[name] = checked
    return {**resolved, **borrowed, **own}  # the driver's own section wins over flat keys


def _checked(
    driver: str,
    options: Mapping[str, Option],
    key: str,
    value: Any,
    where: str,
    fail: Callable[[str, str], SpaceError],
) -> Any:
    if key not in options:
        accepted = ", ".join(options)
        raise fail(where, f"unknown option for driver {driver}; accepted: {accepted}")
    return checked(value, options[key], where, fail)


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
    return [
        name
        for name in DRIVERS
        if driver_module(name) is not None and (name not in EXTRA_OF or has_extra(EXTRA_OF[name]))
    ]


def require_driver(name: str) -> None:
    """MissingExtra `--driver ray needs the ray extra: ...` when the driver's library is absent."""
    if name in EXTRA_OF:
        require_extra(EXTRA_OF[name], f"--driver {name}")


def resolve_driver_options(
    name: str, raw: Mapping[str, Any], fail: Callable[[str, str], SpaceError]
) -> dict[str, Any]:
    """Validate a space file's `driver:` section for driver `name`; returns its full options."""
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
