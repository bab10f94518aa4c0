"""bayes_opt's ConstantLiar, fixed for int and categorical params (imported only when used).

ConstantLiar suggests from a copy of the target space that bayes_opt 3.x (3.4 at least)
rebuilds from float bounds: int params become continuous and a categorical one loses its
one-hot columns, so with --parallel K > 1 a space with a choice failed at its first model
suggestion ("cannot reshape array of size 3 into shape (4)"). The copy here keeps each
param's own type. A module of its own, importing bayes_opt at the top, so that the class is
pickled by name (Ray keeps its searcher's state with plain pickle).
"""

from __future__ import annotations

import warnings
from copy import deepcopy

from bayes_opt.acquisition import ConstantLiar
from bayes_opt.target_space import TargetSpace


class TypedConstantLiar(ConstantLiar):
    """ConstantLiar whose copy of the target space keeps int and categorical params."""

    def _copy_target_space(self, target_space: TargetSpace) -> TargetSpace:
        with warnings.catch_warnings():  # "non-float parameters are experimental"
            warnings.simplefilter("ignore")
            copy = TargetSpace(
                None,
                pbounds=dict(target_space._params_config),
                allow_duplicate_points=target_space._allow_duplicate_points,
            )
        if target_space._constraint is not None:
            copy.set_constraint(deepcopy(target_space.constraint))
        copy._params = deepcopy(target_space._params)
        copy._target = deepcopy(target_space._target)
        return copy
