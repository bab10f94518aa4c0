"""What searches a study: its sampler and pruner with their settings, said where it shows.

Each driver module's search_method(space, study) returns

    {"sampler": "tpe", "sampler_settings": {"seed": 0, "n_startup_trials": 10, ...},
     "pruner": "median", "pruner_settings": {"n_startup_trials": 5, "n_warmup_steps": 0}}

read from the functions that build them (the optuna driver's sampler_settings and
pruner_settings are the keyword arguments its sampler and pruner are made with), so a study's
result is read with the method that produced it: summary.json keeps it under `method`, and
the first line `hpo search` prints says it (method_line). Names of Ray's own schedulers start
with ray_ (ray_asha, ray_median...), since Optuna has a median pruner and a hyperband too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hpo.space.driver_options import driver_module

if TYPE_CHECKING:
    from hpo.records import StudySpec
    from hpo.space import SearchSpace

_NAMES = {
    "tpe": "TPE",
    "gp": "GP",
    "cmaes": "CMA-ES",
    "qmc": "QMC",
    "nsga2": "NSGA-II",
    "bayes_opt": "bayes_opt GP",
    "successive_halving": "successive halving",
    "ray_asha": "Ray's ASHA",
    "ray_hyperband": "Ray's HyperBand",
    "ray_median": "Ray's median stopping rule",
    "ray_pbt": "Ray's PBT",
}
_PHRASES = {  # setting -> how the line says it; True flags say their word, False ones nothing
    "n_startup_trials": "{} startup trials",
    "n_warmup_steps": "warm-up {} steps",
    "init_points": "{} random trials first",
    "max_resource": "max resource {}",
    "min_resource": "first rung at step {}",
    "min_resource_fraction": "first rung at {} of the first complete trial's steps",
    "max_t": "max {} steps",
    "grace_period": "grace period {} steps",
    "min_samples_required": "after {} trials",
    "acquisition": "{}",
    "multivariate": "multivariate",
    "group": "grouped",
    "constant_liar": "constant liar",
    "scramble": "scrambled",
}


def method(
    sampler: str,
    sampler_settings: Mapping[str, Any],
    pruner: str = "none",
    pruner_settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The document summary.json keeps under `method`."""
    return {
        "sampler": sampler,
        "sampler_settings": dict(sampler_settings),
        "pruner": pruner,
        "pruner_settings": dict(pruner_settings or {}),
    }


def method_line(driver: str, searched_by: Mapping[str, Any]) -> str:
    """`optuna TPE (seed 0, 10 startup trials, multivariate), pruner median (5 startup trials,
    warm-up 0 steps)`: the driver, then its sampler and pruner with their settings."""
    sampler = _named(searched_by["sampler"], searched_by["sampler_settings"])
    # the random driver's sampler is random: `random (seed 0)`, not `random random (seed 0)`
    searched = sampler if searched_by["sampler"] == driver else f"{driver} {sampler}"
    if searched_by["pruner"] == "none":
        return f"{searched}, no pruner"
    return f"{searched}, pruner {_named(searched_by['pruner'], searched_by['pruner_settings'])}"


def _named(name: str, settings: Mapping[str, Any]) -> str:
    said = [_phrase(key, value) for key, value in settings.items()]
    said = [phrase for phrase in said if phrase]
    label = _NAMES.get(name, name)
    return f"{label} ({', '.join(said)})" if said else label


def _phrase(key: str, value: Any) -> str:
    if key == "seed":
        return "unseeded" if value is None else f"seed {value}"
    if isinstance(value, bool):
        return _PHRASES.get(key, key.replace("_", " ")) if value else ""
    if isinstance(value, float):
        value = f"{value:g}"
    return _PHRASES.get(key, key.replace("_", " ") + " {}").format(value)


def search_method(space: SearchSpace, study: StudySpec) -> dict[str, Any]:
    """The sampler and pruner the study runs with, and their settings (as above): summary.json's
    `method` and the first line of `hpo search`. Asks the driver's module by its name."""
    return driver_module(space.driver).search_method(space, study)
