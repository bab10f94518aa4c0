"""The Optuna driver (the default): its samplers and pruners over an Optuna study in storage.

Storage: by default a journal file, runs/<study>/optuna.journal; "memory" for none (no resume);
or a database URL (postgresql://, mysql://, sqlite:///) that workers on several machines share.
The study is loaded if it exists. On a database, `hpo search` also stores in the study what
`hpo worker --storage URL --study NAME` needs to join it (hpo.worker), and:

- the budget is global: before each ask, under a PostgreSQL advisory lock, the trials complete,
  pruned or running in every worker are counted, and no trial starts once they reach
  budget.trials; a worker then waits while trials run elsewhere (they may fail) and leaves when
  complete + pruned reach it. MySQL and SQLite have no such lock: two workers asking at the
  same moment may each start the last trial, overshooting by one trial per extra worker.
- a running trial records a heartbeat every heartbeat_interval seconds; a worker that asks
  fails the trials silent for grace_period seconds (their worker died) and queues each again
  once (retries) with the same params: a new trial, the failed one stays failed.
- each process seeds its sampler from the space's seed, its host and its pid, so workers do
  not all propose the same params (qmc keeps the seed: its sequence must be shared).
- Ctrl-C fails the worker's running trials and queues each again with the same params; the
  copy continues from the trial's last.pt when the worker that takes it has that trial in its
  --runs folder, else from step 0.
- each process writes its trials under its own --runs folder; two processes on one machine
  cannot share one (a lock file says so).

Resume (Ctrl-C or kill -9 at any point, then --resume): finished trials stay in storage and
count toward the budget. A trial interrupted (Ctrl-C) or left RUNNING (kill -9) is continued as
the same Optuna trial, from its last.pt (see suggester.py), unless its trial.json shows it
finished (it ended between the two writes), in which case it is told with that outcome. The
sampler is seeded from the seed and the number of trials in storage, so the rest of the budget
goes to configurations not measured yet. On a database, only this folder's trials are settled,
as the heartbeat check would (failed, then queued again, continuing from their last.pt when
this folder holds it); other workers' running trials are left to their heartbeats.

Pruning: each report of the objective metric is trial.report(value, step) and should_stop()
is trial.should_prune(). Optuna cannot prune a study with several objectives.

This package holds the driver, its storage options and what `hpo worker` calls; beside it:

    storage.py       journal, memory or database storage; heartbeats; the folder lock
    suggester.py     OptunaSuggester: ask, report, tell; resume
    shared_study.py  on a database: the global budget, dead and interrupted trials queued again
    recipe.py        what `hpo worker` needs of the study, stored in it

The sampler, the pruner and their options are in hpo.suggesters (optuna_samplers.py,
optuna_pruners.py, optuna_options.py), which the ray driver's searcher optuna runs too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpo.drivers.base import ObjectiveFunction, Option, StudySpec, Tracker
from hpo.drivers.optuna_driver.recipe import study_recipe
from hpo.drivers.optuna_driver.storage import RECIPE, on_database, open_database, without_password
from hpo.drivers.optuna_driver.suggester import OptunaSuggester
from hpo.drivers.suggester_driver import MakeSuggester, SuggesterDriver
from hpo.methods import method
from hpo.parallel import run_study
from hpo.space import SearchSpace, SpaceError
from hpo.study import StudyResult
from hpo.suggesters.optuna_options import OPTUNA_OPTIONS, check_optuna_space
from hpo.suggesters.optuna_pruners import PRUNERS, pruner_name, pruner_settings
from hpo.suggesters.optuna_samplers import SAMPLERS, sampler_name, sampler_settings
from runner.errors import UserInputError

__all__ = [
    "OPTIONS",
    "PRUNERS",
    "SAMPLERS",
    "OptunaDriver",
    "check_space",
    "join_study",
    "read_recipe",
    "search_method",
    "stored_counts",
]

OPTIONS: dict[str, Option] = {
    **OPTUNA_OPTIONS,  # the sampler's and the pruner's; then the storage's
    "heartbeat_interval": Option(
        60, "database storage: seconds between a running trial's heartbeats", kind=int, low=1
    ),
    "grace_period": Option(
        None,
        "database storage: seconds without a heartbeat before a trial "
        "is failed as dead (default: 2 x heartbeat_interval)",
        kind=int | None,
        low=1,
    ),
    "retries": Option(
        1,
        "database storage: reruns, with the same params, of a trial whose worker died",
        kind=int,
        low=0,
    ),
}


def check_space(space: SearchSpace, fail: Callable[[str, str], SpaceError]) -> None:
    """What Optuna's samplers and pruners cannot search (hpo.suggesters.optuna_options)."""
    check_optuna_space(space, fail)


def search_method(space: SearchSpace, study: StudySpec) -> dict[str, Any]:
    """The sampler and pruner as make_sampler and make_pruner build them (a worker on a
    database mixes the seed with its host and pid; a resumed study with its trials so far)."""
    shared = on_database(study)
    return method(
        sampler_name(space),
        sampler_settings(space, study.parallel, shared),
        pruner_name(space),
        pruner_settings(space),
    )


class OptunaDriver(SuggesterDriver):
    """Optuna's samplers and pruners; the study lives in storage and survives kill -9."""

    name = "optuna"

    def suggester(
        self, space: SearchSpace, study: StudySpec, objective: ObjectiveFunction
    ) -> MakeSuggester:
        recipe = study_recipe(space, objective) if on_database(study) else None
        return lambda previous: OptunaSuggester(space, study, previous, recipe)


def join_study(
    space: SearchSpace,
    study: StudySpec,
    objective: ObjectiveFunction,
    tracker: Tracker | None = None,
) -> StudyResult:
    """Run trials of a study on a database until its budget is spent (`hpo worker`).

    Unlike OptunaDriver.run, it leaves the study's recipe as `hpo search` stored it.
    """
    return run_study(
        OptunaDriver.name,
        space,
        study,
        objective,
        tracker,
        lambda previous: OptunaSuggester(space, study, previous),
    )


def read_recipe(storage: str, study_name: str) -> dict[str, Any]:
    """What `hpo search` stored in a study on a database for `hpo worker` to join it."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        stored = optuna.load_study(study_name=study_name, storage=open_database(storage))
    except KeyError:
        raise UserInputError(
            f"no study '{study_name}' in {without_password(storage)}; start it with "
            f"hpo search --storage URL --study {study_name} --space FILE"
        ) from None
    recipe = stored.user_attrs.get(RECIPE)
    if not isinstance(recipe, dict):
        raise UserInputError(
            f"study '{study_name}' in {without_password(storage)} was not started by hpo search "
            f"(it has no '{RECIPE}' user attribute); start one with "
            "hpo search --storage URL --study NAME"
        )
    return recipe


def stored_counts(storage: str, study_name: str) -> dict[str, int]:
    """Trials of a study on a database by state: running, complete, pruned, failed, waiting."""
    import optuna

    trials = optuna.load_study(study_name=study_name, storage=open_database(storage)).trials
    names = {
        "RUNNING": "running",
        "COMPLETE": "complete",
        "PRUNED": "pruned",
        "FAIL": "failed",
        "WAITING": "waiting",
    }
    return {name: sum(t.state.name == state for t in trials) for state, name in names.items()}
