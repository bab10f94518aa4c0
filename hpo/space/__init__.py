"""Search spaces: what a study searches, for which objective, within which budget.

A space file (experiments/spaces/*.yaml) names parameters by dotted config key; paths in it are
relative to the space file (see hpo.space.loading):

    experiment: ../lm_tiny.yaml
    objective: {metric: val_loss, direction: minimize}
    budget: {trials: 16, timeout: null, max_steps: 200}
    driver: {seed: 0, optuna: {sampler: tpe, pruner: median}}
    params:
      train.learning_rate: {type: float, low: 1e-5, high: 1e-2, log: true}
      train.optim: {type: categorical, choices: [adamw, sgd]}
      train.sgd_momentum: {type: float, low: 0.5, high: 0.99, when: {train.optim: sgd}}
      train.max_grad_norm: 1.0

The package's modules, each built on the ones above it:

    errors.py        SpaceError, which every module below raises
    numeric.py       numbers in space files, declared for runner.schema (a range's ends, a
                     step, the budget's counts, durations such as 30m)
    distributions.py Float, Int, Categorical, Fixed: the range of one param
    search_space.py  Param, Objective, Budget, SearchSpace, SpaceError
    driver_options.py the driver table (DRIVERS) and each driver's OPTIONS, found by name
    parsing.py       space_from_dict: a space as a dict, checked key by key
    loading.py       load_space, load_enqueue: space and --enqueue files read from disk;
                     with_line: an error's FILE:LINE

Example:
    >>> space = load_space("experiments/spaces/lr_wd.yaml", driver="random")
    >>> [p.name for p in space.searched]
    ['train.learning_rate', 'train.weight_decay']
"""

from hpo.space.distributions import Categorical, Distribution, Fixed, Float, Int
from hpo.space.loading import load_enqueue, load_space, with_line
from hpo.space.parsing import KeyCheck, space_from_dict
from hpo.space.search_space import Budget, Command, Objective, Param, SearchSpace, SpaceError

__all__ = [
    "Budget",
    "Categorical",
    "Command",
    "Distribution",
    "Fixed",
    "Float",
    "Int",
    "KeyCheck",
    "Objective",
    "Param",
    "SearchSpace",
    "SpaceError",
    "load_enqueue",
    "load_space",
    "space_from_dict",
    "with_line",
]
