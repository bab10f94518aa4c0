"""The search space in Ray's terms, for what only Ray does with it: PBT's mutations (Tune
domains); and the params a trial runs with (PBT's perturbations put back in the space)."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from hpo.space import Categorical, Distribution, Float, Int, SearchSpace
from hpo.suggesters.grid import grid_values as _listed_grid_values


def ray_domain(d: Distribution) -> Any:
    """The Ray Tune domain of a distribution; quantized ones only where Ray's grid is exact."""
    from ray import tune

    if isinstance(d, Categorical):
        return tune.choice(list(d.choices))
    if isinstance(d, Float):
        if d.step is not None:  # quniform rounds to multiples of step counted from 0
            exact = abs(d.low / d.step - round(d.low / d.step)) < 1e-9
            return tune.quniform(d.low, d.high, d.step) if exact else tune.choice(grid_values(d))
        return tune.loguniform(d.low, d.high) if d.log else tune.uniform(d.low, d.high)
    if d.log:
        return tune.lograndint(d.low, d.high + 1)  # upper bound exclusive
    if d.step == 1:
        return tune.randint(d.low, d.high + 1)  # upper bound exclusive
    if d.low % d.step == 0:
        return tune.qrandint(d.low, d.high, d.step)  # upper bound inclusive
    return tune.choice(grid_values(d))


def grid_values(d: Distribution) -> list[Any]:
    """Every value of a finite distribution ([] for a continuous one); check_space counted them."""
    return _listed_grid_values(d) or []


def trial_params(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """The params a trial runs with: back in the space (PBT perturbs past bounds), active ones only."""
    sampled = dict(config)
    for p in space.searched:
        d, value = p.distribution, sampled.get(p.name)
        if isinstance(d, Float | Int) and isinstance(value, numbers.Real):
            value = min(max(value, d.low), d.high)
            # a continuous value stays as sampled: a log10 round trip changes its last digit
            if not (isinstance(d, Float) and d.step is None):
                value = d.from_sample(d.to_sample(value))  # onto its step
            sampled[p.name] = value
    return space.trial_params(sampled)
