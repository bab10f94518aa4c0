"""Seeds of the samplers every driver builds: the same rule for a new and a resumed study."""

from __future__ import annotations

import zlib


def history_seed(seed: int | None, trials_so_far: int) -> int | None:
    """The seed of a sampler that starts with `trials_so_far` trials already in the study.

    A new study: the seed itself (a seeded run is reproducible). A resumed one: the seed mixed
    with the number of trials so far, because a sampler seeded again with the same seed draws
    the earlier run's random (start-up) configurations again, and the study would spend its
    budget measuring them twice.
    """
    if seed is None or not trials_so_far:
        return seed
    return zlib.crc32(f"{seed} after {trials_so_far} trials".encode())
