"""The Optuna driver (the default): its samplers and pruners over an Optuna study in storage.

Storage: by default a journal file, runs/<study>/optuna.journal; "memory" for none (no resume);
or a database URL (sqlite:///, postgresql://, mysql://) that workers on several machines share
(each runs `hpo search` with the same --study and --storage). The study is loaded if it exists.

Resume (kill -9 at any point, then --resume): finished trials stay in storage and count toward
the budget; a trial left RUNNING is failed, unless its trial.json shows it finished (it ended
between the two writes), in which case it is told with that outcome. Failed trials are not
retried with the same params: the sampler proposes new ones for the rest of the budget. With a
shared database, resume only when no other worker is running the study.

Pruning: each report of the objective metric is trial.report(value, step) and should_stop()
is trial.should_prune(). Optuna cannot prune a study with several objectives.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

from hpo.drivers.base import (
    SEED,
    ObjectiveFunction,
    Option,
    StudySpec,
    Suggestion,
    Tracker,
    TrialRecord,
)
from hpo.parallel import run_study
from hpo.space import Categorical, Fixed, Float, Int, SearchSpace, SpaceError
from hpo.study import INTERRUPTED, StudyResult, write_trial
from runner.errors import UserInputError

SAMPLERS = ("auto", "tpe", "gp", "cmaes", "qmc", "random", "grid", "nsga2")
PRUNERS = ("auto", "median", "percentile", "successive_halving", "hyperband", "none")

OPTIONS: dict[str, Option] = {
    "seed": SEED,
    "sampler": Option("auto", "auto: tpe for one objective, nsga2 for several", choices=SAMPLERS),
    "pruner": Option("auto", "auto: median for one objective, none for several", choices=PRUNERS),
    "n_startup_trials": Option(10, "tpe, gp, cmaes: random trials before the model", kind=int,
                               low=0),
    "pruner_startup_trials": Option(5, "median, percentile: trials before any pruning", kind=int,
                                    low=0),
    "n_warmup_steps": Option(0, "median, percentile: steps before a trial can be pruned",
                             kind=int, low=0),
    "percentile": Option(25.0, "percentile: prune below this percentile of the others",
                         kind=float, low=0, high=100),
    "reduction_factor": Option(3, "successive_halving, hyperband: 1/N trials go on", kind=int,
                               low=2),
}


def check_space(space: SearchSpace, fail: Callable[[str, str], SpaceError]) -> None:
    """Grid needs finite choices; several objectives cannot be pruned or searched by CMA-ES."""
    options = space.driver_options
    if len(space.objectives) > 1:
        if options["pruner"] not in ("auto", "none"):
            raise fail("driver.pruner", "Optuna cannot prune with several objectives; use none")
        if options["sampler"] == "cmaes":
            raise fail("driver.sampler", "cmaes optimizes one objective; use nsga2 or tpe")
    if options["sampler"] == "grid":
        for param in space.searched:
            if _grid_values(param.distribution) is None:
                raise fail(f"params.{param.name}", "the grid sampler needs a step (no log scale)")


class OptunaDriver:
    """Optuna's samplers and pruners; the study lives in storage and survives kill -9."""

    name = "optuna"

    def run(self, space: SearchSpace, study: StudySpec, objective: ObjectiveFunction,
            tracker: Tracker | None = None) -> StudyResult:
        return run_study(self.name, space, study, objective, tracker,
                         lambda previous: OptunaSuggester(space, study, previous))


class OptunaSuggester:
    """Asks the Optuna study for params, reports intermediate values, tells outcomes."""

    def __init__(self, space: SearchSpace, study: StudySpec, previous: Sequence[TrialRecord]) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the live view reports trials
        self.optuna, self.space = optuna, space
        self.states = optuna.trial.TrialState
        self.prunes = len(space.objectives) == 1 and _pruner_name(space) != "none"
        self.sampler = _sampler(space, study.parallel)
        if study.storage == "memory" and previous:
            raise UserInputError("--storage memory keeps nothing to resume; use the journal default")
        try:
            self.study = optuna.create_study(
                storage=_storage(study),
                sampler=self.sampler,
                pruner=_pruner(space),
                study_name=study.name,
                directions=[o.direction for o in space.objectives],
                load_if_exists=True,
            )
        except (ValueError, ImportError, optuna.exceptions.StorageInternalError) as err:
            raise UserInputError(f"optuna storage {study.storage or 'journal'}: {err}") from None
        if study.resume:
            self._settle_interrupted(study, previous)
        for params in study.enqueue:
            self.study.enqueue_trial(params, skip_if_exists=True)
        self.reported: dict[int, set[int]] = {}

    def _settle_interrupted(self, study: StudySpec, previous: Sequence[TrialRecord]) -> None:
        on_disk = {r.number: r for r in previous}
        for trial in self.study.get_trials(deepcopy=False, states=(self.states.RUNNING,)):
            record = on_disk.get(trial.number)
            if record is not None and record.state == "complete" and record.values:
                self.study.tell(trial.number, record.values)
            elif record is not None and record.state == "pruned":
                self.study.tell(trial.number, state=self.states.PRUNED)
            else:
                if record is None:  # killed between ask and its first trial.json
                    write_trial(study.dir, TrialRecord(trial.number, trial.params, "failed",
                                                       reason=INTERRUPTED))
                self.study.tell(trial.number, state=self.states.FAIL)

    def finished_count(self) -> int:
        done = (self.states.COMPLETE, self.states.PRUNED)
        return len(self.study.get_trials(deepcopy=False, states=done))

    def ask(self) -> Suggestion | None:
        if isinstance(self.sampler, self.optuna.samplers.GridSampler):
            if self.sampler.is_exhausted(self.study):
                return None
        trial = self.study.ask()
        sampled: dict[str, Any] = {}
        for param in self.space.params:  # parents first: conditions see their parent's value
            if not isinstance(param.distribution, Fixed) and param.is_active(sampled):
                sampled[param.name] = _suggest(trial, param.name, param.distribution)
        self.reported[trial.number] = set()
        return Suggestion(trial.number, self.space.trial_params(sampled), handle=trial)

    def report(self, suggestion: Suggestion, step: int, value: float) -> None:
        steps = self.reported[suggestion.number]
        if self.prunes and step not in steps:  # Optuna keeps the first value of a step
            steps.add(step)
            suggestion.handle.report(value, step)

    def should_prune(self, suggestion: Suggestion) -> bool:
        return self.prunes and suggestion.handle.should_prune()

    def tell(self, suggestion: Suggestion, record: TrialRecord) -> None:
        del self.reported[suggestion.number]
        if record.reason:
            suggestion.handle.set_user_attr("reason", record.reason)
        if record.state == "complete":
            self.study.tell(suggestion.handle, record.values)
        else:
            state = self.states.PRUNED if record.state == "pruned" else self.states.FAIL
            self.study.tell(suggestion.handle, state=state)


def _suggest(trial: Any, name: str, distribution: Any) -> Any:
    if isinstance(distribution, Categorical):
        return trial.suggest_categorical(name, list(distribution.choices))
    suggest = trial.suggest_float if isinstance(distribution, Float) else trial.suggest_int
    return suggest(name, distribution.low, distribution.high, step=distribution.step,
                   log=distribution.log)


def _storage(study: StudySpec) -> Any:
    if study.storage is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        journal = study.dir / "optuna.journal"
        if study.resume:  # a run killed while writing left its lock: Optuna would wait 30 s
            journal.with_name(journal.name + ".lock").unlink(missing_ok=True)
        return JournalStorage(JournalFileBackend(str(journal)))
    if study.storage == "memory":
        return None
    return study.storage


def _sampler_name(space: SearchSpace) -> str:
    name = space.driver_options["sampler"]
    return ("tpe" if len(space.objectives) == 1 else "nsga2") if name == "auto" else name


def _pruner_name(space: SearchSpace) -> str:
    name = space.driver_options["pruner"]
    return ("median" if len(space.objectives) == 1 else "none") if name == "auto" else name


def _sampler(space: SearchSpace, parallel: int) -> Any:
    import optuna

    with warnings.catch_warnings():  # TPE's group, GP: "experimental feature"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _make_sampler(optuna.samplers, space, parallel)


def _make_sampler(samplers: Any, space: SearchSpace, parallel: int) -> Any:
    options, name = space.driver_options, _sampler_name(space)
    seed, startup = options["seed"], options["n_startup_trials"]
    if name == "tpe":
        # group: conditional params form their own groups, so multivariate TPE handles them.
        # constant_liar: parallel trials see pending ones as bad and spread out.
        return samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True,
                                   group=True, constant_liar=parallel > 1)
    if name == "gp":
        return samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401 (Optuna imports it only when it first samples)
        except ImportError:
            raise UserInputError("sampler cmaes needs the cmaes package: pip install cmaes") from None
        return samplers.CmaEsSampler(seed=seed, n_startup_trials=startup)
    if name == "qmc":
        return samplers.QMCSampler(seed=seed, scramble=True, warn_asynchronous_seeding=False)
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "grid":

        class AskTellGridSampler(samplers.GridSampler):
            def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
                pass  # its study.stop() works only inside study.optimize: ask() checks instead

        grid = {p.name: _grid_values(p.distribution) for p in space.searched}
        return AskTellGridSampler(grid, seed=seed)
    return samplers.NSGAIISampler(seed=seed)


def _pruner(space: SearchSpace) -> Any:
    import optuna.pruners as pruners

    options, name = space.driver_options, _pruner_name(space)
    startup, warmup = options["pruner_startup_trials"], options["n_warmup_steps"]
    if name == "median":
        return pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    if name == "percentile":
        return pruners.PercentilePruner(options["percentile"], n_startup_trials=startup,
                                        n_warmup_steps=warmup)
    if name == "successive_halving":
        return pruners.SuccessiveHalvingPruner(reduction_factor=options["reduction_factor"])
    if name == "hyperband":
        return pruners.HyperbandPruner(max_resource=space.budget.max_steps or "auto",
                                       reduction_factor=options["reduction_factor"])
    return pruners.NopPruner()


def _grid_values(distribution: Any) -> list[Any] | None:
    if isinstance(distribution, Categorical):
        return list(distribution.choices)
    if isinstance(distribution, Float | Int) and distribution.n_values is not None:
        return [distribution.value_at(i) for i in range(distribution.n_values)]
    return None
