"""The algorithm layer: what proposes a trial's params and what stops a trial early.

Written once, run by every driver that uses the algorithm: the optuna driver (one process,
--parallel, database workers) and the ray driver's searcher optuna build Optuna's sampler and
pruner here from the same options, so a seeded study tries the same params on both. Below the
drivers (hpo.drivers) and above the space (hpo.space); nothing here imports a driver.

    optuna_samplers.py  the sampler the options name, seeded per worker; suggest_params
    optuna_pruners.py   the pruner the options name, and what `auto` picks
    optuna_options.py   their options (a space's `driver:` section) and what they cannot search
    grid.py             grids counted before they are listed (optuna's and Ray's grid)
    seeds.py            a sampler's seed for a new or a resumed study

Optuna itself is imported inside the functions that build a sampler or pruner, so that a
space can be checked without it.
"""
