"""Random search: each trial drawn independently, uniform (log-uniform for log params).

Trial n draws its params from a generator seeded with (seed, n): a seeded run is reproducible,
in parallel too and on any driver (the local loop and Ray's searcher random ask this same
code), and a resumed run goes on with the numbers an earlier run did not reach, so no
configuration is drawn twice. Enqueued params replace the draws of the first trials.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from hpo.space import Categorical, Distribution, Fixed, SearchSpace
from hpo.suggesters.algorithm import LearnsNothing


def draw(distribution: Distribution, rng: random.Random) -> Any:
    """One value, uniform over the choices, the steps, or the (log-)range."""
    if isinstance(distribution, Categorical):
        return rng.choice(distribution.choices)
    if distribution.n_values is not None:
        return distribution.value_at(rng.randrange(distribution.n_values))
    return distribution.from_sample(rng.uniform(*distribution.sample_bounds()))


class RandomDraws(LearnsNothing):
    """Draws every searched param; the space keeps those whose condition holds."""

    def __init__(
        self, space: SearchSpace, seed: int | None, enqueue: Sequence[Mapping[str, Any]] = ()
    ) -> None:
        self.space, self.seed, self.enqueue = space, seed, enqueue

    def ask(self, number: int) -> dict[str, Any]:
        return self.space.trial_params(self.draw_all(number))

    def draw_all(self, number: int) -> dict[str, Any]:
        """Trial `number`'s draw of every searched param, those inactive in it too."""
        rng = random.Random(f"{self.seed}:{number}") if self.seed is not None else random.Random()
        sampled = {
            p.name: draw(p.distribution, rng)
            for p in self.space.params
            if not isinstance(p.distribution, Fixed)
        }
        if number < len(self.enqueue):  # known-good configurations go first
            sampled.update(self.enqueue[number])
        return sampled
