"""The Optuna sampler a space's `driver:` options name, set up for one process or many workers."""

from __future__ import annotations

import os
import socket
import warnings
import zlib
from typing import Any

from hpo.drivers.base import history_seed
from hpo.drivers.grid import grid_values
from hpo.space import SearchSpace
from runner.errors import UserInputError

SAMPLERS = ("auto", "tpe", "gp", "cmaes", "qmc", "random", "grid", "nsga2")


def _sampler_name(space: SearchSpace) -> str:
    name = space.driver_options["sampler"]
    return ("tpe" if len(space.objectives) == 1 else "nsga2") if name == "auto" else name


def make_sampler(space: SearchSpace, parallel: int, shared: bool = False, history: int = 0) -> Any:
    """The space's sampler; shared: other processes (workers) ask the same study on a database;
    history: trials already in the study's storage (a resumed study)."""
    import optuna

    with warnings.catch_warnings():  # TPE's group, GP: "experimental feature"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _build_sampler(optuna.samplers, space, parallel, shared, history)


def sampler_seed(space: SearchSpace, shared: bool, history: int) -> int | None:
    """The seed of this process's sampler.

    A new study on one machine: the space's seed; a resumed one: base.history_seed (the seed
    mixed with the number of trials already stored). Workers on a database: mixed with
    host and pid, so they do not all propose the same params. qmc keeps the seed: its sequence
    is indexed by trial number and must be the same in every process.
    """
    seed = space.driver_options["seed"]
    if seed is None or _sampler_name(space) == "qmc":
        return seed
    if shared:
        return zlib.crc32(f"{seed} {socket.gethostname()} {os.getpid()}".encode())
    return history_seed(seed, history)


def _build_sampler(
    samplers: Any, space: SearchSpace, parallel: int, shared: bool, history: int
) -> Any:
    options, name = space.driver_options, _sampler_name(space)
    seed, startup = sampler_seed(space, shared, history), options["n_startup_trials"]
    if name == "tpe":
        # group: conditional params form their own groups, so multivariate TPE handles them;
        # only then, since grouping rescans every past trial on each ask (~12% per trial at 1000)
        # constant_liar: parallel trials see pending ones as bad and spread out.
        return samplers.TPESampler(
            seed=seed,
            n_startup_trials=startup,
            multivariate=True,
            group=any(p.condition for p in space.params),
            constant_liar=parallel > 1 or shared,
        )
    if name == "gp":
        return samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401 (Optuna imports it only when it first samples)
        except ImportError:
            raise UserInputError(
                "sampler cmaes needs the cmaes package: pip install cmaes"
            ) from None
        return samplers.CmaEsSampler(seed=seed, n_startup_trials=startup)
    if name == "qmc":
        return samplers.QMCSampler(seed=seed, scramble=True, warn_asynchronous_seeding=False)
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "grid":  # check_space counted it: at most MAX_GRID_POINTS points

        class AskTellGridSampler(samplers.GridSampler):
            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                pass  # its study.stop() works only inside study.optimize: ask() checks instead

        grid = {p.name: grid_values(p.distribution) for p in space.searched}
        return AskTellGridSampler(grid, seed=seed)
    return samplers.NSGAIISampler(seed=seed)
