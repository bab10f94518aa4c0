"""The study's ray.tune Searcher: hpo's own algorithm, asked as the local driver asks it.

Ray picks no params here. Each searcher option runs an algorithm of hpo.suggesters, the code
--driver random, bo and optuna run, asked by trial number (the same numbers, from 0 in a new
study): random is hpo.suggesters.random, bayesopt hpo.suggesters.bayes_opt, optuna (the
default) and grid an in-memory Optuna study with the optuna driver's sampler and pruner
(hpo.suggesters.optuna_study; grid is Optuna's grid sampler, as --driver optuna's sampler
grid). So one space, seed and objective try the same configurations on Ray as on the local
driver, one trial at a time (tests/hpo/test_ray_driver.py); several at once make the order
depend on timing on both alike. The Searcher reserves trial numbers and keeps the budget by
the local loop's rule (hpo.trial_book): it stops suggesting once complete + pruned trials
(earlier runs included; failed ones do not count) reach budget.trials.

Optuna's pruner (searcher optuna, scheduler auto) is cooperative, as under --driver optuna:
each result holding the objective metric is reported to the algorithm, and when it says stop
the searcher writes trials/<n>/prune, which the trial's reporter reads in should_stop(). Tune's
function trainable waits inside tune.report until this process has handled that result, so the
file is there when report() returns. Ray's own schedulers stop trials from outside instead.
"""

from __future__ import annotations

import json
import math
import numbers
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

from hpo.drivers.base import StudySpec, TrialRecord
from hpo.drivers.bo_observations import restored_bayes_opt
from hpo.drivers.ray_tune.events import StudyEvents, live_events
from hpo.drivers.ray_tune.trial_numbers import reserve_number
from hpo.space import Objective, SearchSpace
from hpo.study import load_trials, trial_dir
from hpo.suggesters.algorithm import Algorithm
from hpo.suggesters.optuna_pruners import pruner_name
from hpo.suggesters.optuna_study import OptunaStudy
from hpo.suggesters.random import RandomDraws
from hpo.trial_book import objective_values
from runner.files import atomic_write_text

PRUNE_FILE = "prune"  # in trials/<n>/: the pruner said stop; the trial's should_stop() reads it


def optuna_prunes(space: SearchSpace) -> bool:
    """Whether Optuna's pruner decides which trials stop (searcher optuna, scheduler auto)."""
    options = space.driver_options
    return (
        options["searcher"] == "optuna"
        and options["scheduler"] == "auto"
        and len(space.objectives) == 1
        and pruner_name(space) != "none"
    )


def study_algorithm(
    space: SearchSpace, study: StudySpec, previous: Sequence[TrialRecord]
) -> Algorithm:
    """The algorithm the searcher option names, built as the local driver builds it."""
    searcher, enqueue, so_far = space.driver_options["searcher"], study.enqueue, len(previous)
    if searcher == "random":
        return RandomDraws(space, space.driver_options["seed"], enqueue)
    if searcher == "bayesopt":  # the earlier experiments' trials teach it, as under --driver bo
        return restored_bayes_opt(space, study, previous)
    return OptunaStudy(  # optuna and grid; enqueued params go first in a new study only
        space,
        study.name,
        study.parallel,
        history=so_far,
        enqueue=[] if so_far else enqueue,
        prunes=optuna_prunes(space),
    )


def study_searcher(space: SearchSpace, study: StudySpec, events: StudyEvents) -> Any:
    """The study's ray.tune Searcher (a class made here: ray is imported only when it runs)."""
    from ray.tune.search import Searcher

    # The class is pickled with the experiment: it may refer to plain data and module functions,
    # never to `events` (the tracker behind it may not pickle, and must be the live one).
    metric, objectives = space.objective.metric, space.objectives
    mode = "min" if space.objective.direction == "minimize" else "max"
    budget, study_dir, key = space.budget.trials, study.dir.resolve(), events.key
    # a later experiment of the study (resumed, or after failures): not the same draws again
    algorithm = study_algorithm(space, study, load_trials(study.dir))

    class StudySearcher(Searcher):
        """Reserves a trial number per suggestion, keeps the budget, asks the algorithm."""

        def __init__(self) -> None:
            super().__init__(metric=metric, mode=mode)
            self.algorithm = algorithm
            self.live: dict[str, int] = {}  # Ray trial id -> trial number
            self.suggested = 0

        def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
            return True  # metric, mode and space were set at construction

        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
            study_events = live_events(key)  # None where Tune runs remotely (Ray Client)
            if study_events is None and budget is not None and self.suggested >= budget:
                return Searcher.FINISHED
            if study_events is not None and study_events.book.why_stop():
                return Searcher.FINISHED
            if study_events is not None and study_events.book.why_stop(running=len(self.live)):
                return None  # the live trials fill the budget; ask again when one ends: it may fail
            number = reserve_number(study_dir)
            params = self.algorithm.ask(number)
            if params is None:  # exhausted (a grid): the reserved folder is not a trial
                trial_dir(study_dir, number).rmdir()
                return Searcher.FINISHED
            self.live[trial_id] = number
            self.suggested += 1
            return {**params, "hpo_trial": number}

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            number, value, step = self.live.get(trial_id), result.get(metric), result.get("step")
            if (
                number is None
                or "hpo_state" in result  # the trial's end: what it returned, told below
                or not isinstance(value, numbers.Real)
                or not math.isfinite(value)
                or not isinstance(step, int)
            ):
                return
            decision = self.algorithm.report(number, step, float(value))
            if decision.stop:
                prune = trial_dir(study_dir, number) / PRUNE_FILE
                if not prune.exists():  # read by the trial's should_stop()
                    atomic_write_text(prune, f"{decision.reason}\n")

        def on_trial_complete(
            self, trial_id: str, result: dict | None = None, error: bool = False
        ) -> None:
            number = self.live.pop(trial_id, None)
            if number is not None:
                self.algorithm.tell(number, *_outcome(result or {}, error, objectives))

        def save(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "wb") as f:
                pickle.dump(self.__dict__, f)

        def restore(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "rb") as f:
                self.__dict__.update(pickle.load(f))
            if isinstance(self.algorithm, OptunaStudy):
                self.algorithm.reseed(len(load_trials(study_dir)))

    return StudySearcher()


def _outcome(
    result: Mapping[str, Any], error: bool, objectives: Sequence[Objective]
) -> tuple[str, list | None]:
    """How a Ray trial ended, as the local loop tells it: complete with its values, failed
    (an error, or values that are not usable), or pruned (it ended without returning)."""
    if error:
        return "failed", None
    if result.get("hpo_state") != "complete":
        return "pruned", None
    values, reason = objective_values(json.loads(result["hpo_values"]), objectives)
    return ("failed", None) if reason else ("complete", values)
