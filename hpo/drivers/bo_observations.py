"""bayes_opt's algorithm as a resumed study left it: its observations file and trials so far.

Shared by --driver bo (which also rewrites the file after each complete trial) and --driver
ray's searcher bayesopt (the earlier experiments' trials teach it, as under --driver bo); a
module of its own because no driver imports another driver (tests/test_dependencies.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from hpo.drivers.base import StudySpec, TrialRecord
from hpo.space import SearchSpace
from hpo.suggesters.bayes_opt import BayesOpt

OBSERVATIONS = "bo_observations.json"


def restored_bayes_opt(
    space: SearchSpace, study: StudySpec, previous: Sequence[TrialRecord]
) -> BayesOpt:
    """Every registered observation from the file; a complete trial missing from it (killed
    between the two writes) is registered from its trial record."""
    path = study.dir / OBSERVATIONS
    bayes = BayesOpt(space, study.parallel, history=len(previous), enqueue=study.enqueue)
    saved = json.loads(path.read_text()) if path.exists() else {}
    complete = [
        (r.number, r.params, r.value) for r in previous if r.state == "complete" and r.values
    ]
    bayes.restore(saved, complete)
    return bayes
