"""The algorithm layer: what proposes a trial's params and what stops a trial early.

Each algorithm is written once, behind one small interface (algorithm.py: ask the params of a
trial by its number, tell how it ended, describe its state for resume), and every driver runs
it: the local loop, --parallel and PostgreSQL workers (through hpo.parallel.run_study), and
Ray (its Tune Searcher, hpo/drivers/ray_tune/searchers.py). So a seeded study tries the same
params on every driver. Below the drivers (hpo.drivers) and above the space (hpo.space);
nothing here imports a driver.

    algorithm.py        the Algorithm interface
    random.py           random search, trial n drawn from a generator seeded with (seed, n)
    bayes_opt.py        bayes_opt's Gaussian process: its options, coordinates, observations
    bayes_opt_liar.py   bayes_opt's ConstantLiar, fixed for int and categorical params
    optuna_samplers.py  the sampler the options name, seeded per worker; suggest_params
    optuna_pruners.py   the pruner the options name, and what `auto` picks
    optuna_options.py   their options (a space's `driver:` section) and what they cannot search
    optuna_study.py     both in an in-memory Optuna study (Ray's searchers optuna and grid)
    grid.py             grids counted before they are listed; a grid's points
    seeds.py            a sampler's seed for a new or a resumed study

optuna and bayes_opt are imported inside the functions that build a sampler, pruner or
optimizer, so that a space can be checked without them.
"""
