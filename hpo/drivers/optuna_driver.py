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
- each process writes its trials under its own --runs folder; two processes on one machine
  cannot share one (a lock file says so).

Resume (kill -9 at any point, then --resume): finished trials stay in storage and count toward
the budget; a trial left RUNNING is failed, unless its trial.json shows it finished (it ended
between the two writes), in which case it is told with that outcome. Failed trials are not
retried with the same params: the sampler proposes new ones for the rest of the budget. On a
database, only this folder's trials are settled, as the heartbeat check would (failed, then
queued again); other workers' running trials are left to their heartbeats.

Pruning: each report of the objective metric is trial.report(value, step) and should_stop()
is trial.should_prune(). Optuna cannot prune a study with several objectives.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from hpo.drivers.base import (
    SEED,
    ObjectiveFunction,
    Option,
    StudySpec,
    Suggestion,
    Tracker,
    TrialRecord,
)
from hpo.parallel import ASK_LATER, run_study
from hpo.space import Categorical, Fixed, Float, Int, SearchSpace, SpaceError
from hpo.study import INTERRUPTED, StudyResult, write_trial
from runner.errors import UserInputError

SAMPLERS = ("auto", "tpe", "gp", "cmaes", "qmc", "random", "grid", "nsga2")
PRUNERS = ("auto", "median", "percentile", "successive_halving", "hyperband", "none")

OPTIONS: dict[str, Option] = {
    "seed": SEED,
    "sampler": Option("auto", "auto: tpe for one objective, nsga2 for several", choices=SAMPLERS),
    "pruner": Option("auto", "auto: median for one objective, none for several", choices=PRUNERS),
    "n_startup_trials": Option(
        10, "tpe, gp, cmaes: random trials before the model", kind=int, low=0
    ),
    "pruner_startup_trials": Option(
        5, "median, percentile: trials before any pruning", kind=int, low=0
    ),
    "n_warmup_steps": Option(
        0, "median, percentile: steps before a trial can be pruned", kind=int, low=0
    ),
    "percentile": Option(
        25.0, "percentile: prune below this percentile of the others", kind=float, low=0, high=100
    ),
    "reduction_factor": Option(
        3, "successive_halving, hyperband: 1/N trials go on", kind=int, low=2
    ),
    "heartbeat_interval": Option(
        60, "database storage: seconds between a running trial's heartbeats", kind=int, low=1
    ),
    "grace_period": Option(
        None,
        "database storage: seconds without a heartbeat before a trial "
        "is failed as dead (default: 2 x heartbeat_interval)",
        kind=int,
        low=1,
    ),
    "retries": Option(
        1,
        "database storage: reruns, with the same params, of a trial whose worker died",
        kind=int,
        low=0,
    ),
}
RECIPE = "hpo"  # the study's user attribute that holds hpo.worker.study_recipe()

log = logging.getLogger(__name__)


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

    def run(
        self,
        space: SearchSpace,
        study: StudySpec,
        objective: ObjectiveFunction,
        tracker: Tracker | None = None,
    ) -> StudyResult:
        from hpo.worker import study_recipe

        recipe = study_recipe(space, objective) if _on_database(study) else None
        return run_study(
            self.name,
            space,
            study,
            objective,
            tracker,
            lambda previous: OptunaSuggester(space, study, previous, recipe),
        )


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
        stored = optuna.load_study(study_name=study_name, storage=_open_database(storage))
    except KeyError:
        raise UserInputError(
            f"no study '{study_name}' in {_shown(storage)}; start it with "
            f"hpo search --storage URL --study {study_name} --space FILE"
        ) from None
    recipe = stored.user_attrs.get(RECIPE)
    if not isinstance(recipe, dict):
        raise UserInputError(
            f"study '{study_name}' in {_shown(storage)} was not started by hpo search (it has no "
            f"'{RECIPE}' user attribute); start one with hpo search --storage URL --study NAME"
        )
    return recipe


def stored_counts(storage: str, study_name: str) -> dict[str, int]:
    """Trials of a study on a database by state: running, complete, pruned, failed, waiting."""
    import optuna

    trials = optuna.load_study(study_name=study_name, storage=_open_database(storage)).trials
    names = {
        "RUNNING": "running",
        "COMPLETE": "complete",
        "PRUNED": "pruned",
        "FAIL": "failed",
        "WAITING": "waiting",
    }
    return {name: sum(t.state.name == state for t in trials) for state, name in names.items()}


class OptunaSuggester:
    """Asks the Optuna study for params, reports intermediate values, tells outcomes."""

    def __init__(
        self,
        space: SearchSpace,
        study: StudySpec,
        previous: Sequence[TrialRecord],
        recipe: dict[str, Any] | None = None,
    ) -> None:
        import optuna
        import sqlalchemy.exc

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the live view reports trials
        self.optuna, self.space = optuna, space
        self.states = optuna.trial.TrialState
        self.prunes = len(space.objectives) == 1 and _pruner_name(space) != "none"
        self.shared = _on_database(study)
        self.sampler = _sampler(space, study.parallel, shared=self.shared)
        if study.storage == "memory" and previous:
            raise UserInputError(
                "--storage memory keeps nothing to resume; use the journal default"
            )
        self._folder_lock = _lock_folder(study) if self.shared else None
        try:
            self.storage = _storage(study, space)
            self.study = optuna.create_study(
                storage=self.storage,
                sampler=self.sampler,
                pruner=_pruner(space),
                study_name=study.name,
                directions=[o.direction for o in space.objectives],
                load_if_exists=True,
            )
        except (
            ValueError,
            ImportError,
            optuna.exceptions.StorageInternalError,
            sqlalchemy.exc.SQLAlchemyError,
        ) as err:
            where = _shown(study.storage) if study.storage else "journal"
            raise UserInputError(f"optuna storage {where}: {err}") from None
        if self.shared:
            self.study_id = self.storage.get_study_id_from_name(study.name)
        if recipe is not None:
            self._store_recipe(study, recipe)
        self.beats: dict[int, _Heartbeat] = {}
        if study.resume:
            self._settle_interrupted(study, previous)
        for params in study.enqueue:
            self.study.enqueue_trial(params, skip_if_exists=True)
        self.reported: dict[int, set[int]] = {}

    def _store_recipe(self, study: StudySpec, recipe: dict[str, Any]) -> None:
        stored = self.study.user_attrs.get(RECIPE)
        for key in ("params", "objective"):
            if isinstance(stored, dict) and stored["space"].get(key) != recipe["space"][key]:
                raise UserInputError(
                    f"{self.space.source}: {key} differ from those of study '{study.name}' in "
                    f"{_shown(study.storage)}; use the same space or another --study NAME"
                )
        self.study.set_user_attr(RECIPE, recipe)
        log.info(
            "other machines join this study with: hpo worker --storage %s --study %s",
            _shown(study.storage),
            study.name,
        )

    def _settle_interrupted(self, study: StudySpec, previous: Sequence[TrialRecord]) -> None:
        on_disk = {r.number: r for r in previous}
        for trial in self.study.get_trials(states=(self.states.RUNNING,)):
            record = on_disk.get(trial.number)
            try:
                if record is not None and record.state == "complete" and record.values:
                    self.study.tell(trial.number, record.values)
                elif record is not None and record.state == "pruned":
                    self.study.tell(trial.number, state=self.states.PRUNED)
                elif self.shared and record is not None:  # ours, and this folder is locked: dead
                    self.study.tell(trial.number, state=self.states.FAIL)
                    retry = self.storage.get_heartbeat_stale_trial_callback()
                    if retry is not None:
                        retry(self.study, trial)
                elif not self.shared:
                    if record is None:  # killed between ask and its first trial.json
                        write_trial(
                            study.dir,
                            TrialRecord(trial.number, trial.params, "failed", reason=INTERRUPTED),
                        )
                    self.study.tell(trial.number, state=self.states.FAIL)
            except self.optuna.exceptions.UpdateFinishedTrialError:
                pass  # another worker's heartbeat check failed it meanwhile

    def finished_count(self) -> int:
        done = (self.states.COMPLETE, self.states.PRUNED)
        return len(self.study.get_trials(deepcopy=False, states=done))

    def ask(self) -> Suggestion | str | None:
        if isinstance(self.sampler, self.optuna.samplers.GridSampler):
            if self.sampler.is_exhausted(self.study):
                return None
        if self.shared:
            with self._study_lock():
                trial = self._ask_within_budget()
            if trial is None:
                return ASK_LATER
        else:
            trial = self.study.ask()
        sampled: dict[str, Any] = {}
        for param in self.space.params:  # parents first: conditions see their parent's value
            if not isinstance(param.distribution, Fixed) and param.is_active(sampled):
                sampled[param.name] = _suggest(trial, param.name, param.distribution)
        self.reported[trial.number] = set()
        return Suggestion(trial.number, self.space.trial_params(sampled), handle=trial)

    def _ask_within_budget(self) -> Any:
        """A new or queued trial, unless trials complete, pruned or running anywhere fill the budget."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.optuna.exceptions.ExperimentalWarning)
            self.optuna.storages.fail_stale_trials(
                self.study
            )  # fails and queues dead workers' trials
        budget = self.space.budget.trials
        counted = (self.states.COMPLETE, self.states.PRUNED, self.states.RUNNING)
        if (
            budget is not None
            and len(self.study.get_trials(deepcopy=False, states=counted)) >= budget
        ):
            return None
        with warnings.catch_warnings():  # this is the heartbeat Optuna's optimize() would run
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
            trial = self.study.ask()
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, trial.number)
        self.beats[trial.number] = _Heartbeat(self.storage, trial_id)
        return trial

    @contextmanager
    def _study_lock(self) -> Iterator[None]:
        """PostgreSQL: one worker at a time counts the trials and asks (other databases: none)."""
        if self.storage.engine.dialect.name != "postgresql":
            yield
            return
        from sqlalchemy import text

        digest = hashlib.sha256(f"hpo study {self.study.study_name}".encode()).digest()
        key = {"key": int.from_bytes(digest[:8], "big", signed=True)}
        with self.storage.engine.connect() as connection:  # a dead worker's session ends: unlocked
            connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)

    def report(self, suggestion: Suggestion, step: int, value: float) -> None:
        steps = self.reported[suggestion.number]
        if self.prunes and step not in steps:  # Optuna keeps the first value of a step
            steps.add(step)
            try:
                suggestion.handle.report(value, step)
            except self.optuna.exceptions.UpdateFinishedTrialError:
                pass  # failed as dead by another worker: tell() says so

    def should_prune(self, suggestion: Suggestion) -> bool:
        return self.prunes and suggestion.handle.should_prune()

    def tell(self, suggestion: Suggestion, record: TrialRecord) -> None:
        del self.reported[suggestion.number]
        beat = self.beats.pop(suggestion.number, None)
        if beat is not None:
            beat.stop()
        try:
            if record.reason:
                suggestion.handle.set_user_attr("reason", record.reason)
            if record.state == "complete":
                self.study.tell(suggestion.handle, record.values)
            else:
                state = self.states.PRUNED if record.state == "pruned" else self.states.FAIL
                self.study.tell(suggestion.handle, state=state)
        except self.optuna.exceptions.UpdateFinishedTrialError:
            log.warning(
                "trial %d ended %s, but another worker had failed it as dead (no heartbeat "
                "for grace_period seconds) and queued it again; the study keeps it failed",
                suggestion.number,
                record.state,
            )


class _Heartbeat:
    """Records a running trial's heartbeat now, then every heartbeat_interval seconds until stop()."""

    def __init__(self, storage: Any, trial_id: int) -> None:
        storage.record_heartbeat(trial_id)  # at once: a trial with no heartbeat is never failed
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=_beat,
            args=(storage, trial_id, storage.get_heartbeat_interval(), self._stopped),
            name=f"hpo-heartbeat-{trial_id}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def _beat(storage: Any, trial_id: int, interval: float, stopped: threading.Event) -> None:
    while not stopped.wait(interval):
        try:
            storage.record_heartbeat(trial_id)
        except Exception as err:  # noqa: BLE001 (the database is away: keep trying, the trial runs on)
            log.warning("heartbeat of trial id %d not recorded: %s", trial_id, err)


def _suggest(trial: Any, name: str, distribution: Any) -> Any:
    if isinstance(distribution, Categorical):
        return trial.suggest_categorical(name, list(distribution.choices))
    suggest = trial.suggest_float if isinstance(distribution, Float) else trial.suggest_int
    return suggest(
        name, distribution.low, distribution.high, step=distribution.step, log=distribution.log
    )


def _on_database(study: StudySpec) -> bool:
    return study.storage not in (None, "memory")


def _storage(study: StudySpec, space: SearchSpace) -> Any:
    if study.storage is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        journal = study.dir / "optuna.journal"
        if study.resume:  # a run killed while writing left its lock: Optuna would wait 30 s
            journal.with_name(journal.name + ".lock").unlink(missing_ok=True)
        return JournalStorage(JournalFileBackend(str(journal)))
    if study.storage == "memory":
        return None
    import optuna

    options = space.driver_options
    retry = None
    if options["retries"]:
        with warnings.catch_warnings():  # "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=options["retries"])
    return _open_database(
        study.storage,
        heartbeat_interval=options["heartbeat_interval"],
        grace_period=options["grace_period"],
        heartbeat_stale_trial_callback=retry,
    )


def _open_database(url: str, **heartbeat: Any) -> Any:
    import optuna
    import sqlalchemy.exc

    try:
        with warnings.catch_warnings():  # heartbeat_interval: "experimental"
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # pre-ping: a worker outlives the database's idle timeouts and restarts
            return optuna.storages.RDBStorage(
                url, engine_kwargs={"pool_pre_ping": True}, **heartbeat
            )
    except (ValueError, ImportError, sqlalchemy.exc.SQLAlchemyError) as err:
        hint = (
            " (PostgreSQL needs psycopg: pip install 'psycopg[binary]')"
            if isinstance(err, ImportError) and url.startswith("postgres")
            else ""
        )
        raise UserInputError(f"optuna storage {_shown(url)}: {err}{hint}") from None


def _shown(url: str) -> str:
    """The URL without its password, for messages."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _lock_folder(study: StudySpec) -> IO[str]:
    """Hold runs/<study>/.lock while this process runs: its trials folder is its own."""
    import fcntl

    handle = (study.dir / ".lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UserInputError(
            f"{study.dir}: another hpo process on this machine runs study {study.name} in this "
            "folder; give each worker its own folder (--runs DIR), or one --parallel K"
        ) from None
    return handle


def _sampler_name(space: SearchSpace) -> str:
    name = space.driver_options["sampler"]
    return ("tpe" if len(space.objectives) == 1 else "nsga2") if name == "auto" else name


def _pruner_name(space: SearchSpace) -> str:
    name = space.driver_options["pruner"]
    return ("median" if len(space.objectives) == 1 else "none") if name == "auto" else name


def _sampler(space: SearchSpace, parallel: int, shared: bool = False) -> Any:
    """shared: other processes (workers) ask the same study on a database."""
    import optuna

    with warnings.catch_warnings():  # TPE's group, GP: "experimental feature"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _make_sampler(optuna.samplers, space, parallel, shared)


def _make_sampler(samplers: Any, space: SearchSpace, parallel: int, shared: bool) -> Any:
    options, name = space.driver_options, _sampler_name(space)
    seed, startup = options["seed"], options["n_startup_trials"]
    if shared and seed is not None and name != "qmc":  # workers with one seed ask the same params
        seed = zlib.crc32(f"{seed} {socket.gethostname()} {os.getpid()}".encode())
    if name == "tpe":
        # group: conditional params form their own groups, so multivariate TPE handles them;
        # only then, since grouping rescans every past trial on each ask (~12% per trial at 1000)
        # constant_liar: parallel trials see pending ones as bad and spread out.
        return samplers.TPESampler(
            seed=seed,
            n_startup_trials=startup,
            multivariate=True,
            group=any(p.condition for p in space.params),
            constant_liar=parallel > 1 or shared,
        )
    if name == "gp":
        return samplers.GPSampler(seed=seed, n_startup_trials=startup)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401 (Optuna imports it only when it first samples)
        except ImportError:
            raise UserInputError(
                "sampler cmaes needs the cmaes package: pip install cmaes"
            ) from None
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
        return pruners.PercentilePruner(
            options["percentile"], n_startup_trials=startup, n_warmup_steps=warmup
        )
    if name == "successive_halving":
        return pruners.SuccessiveHalvingPruner(reduction_factor=options["reduction_factor"])
    if name == "hyperband":
        return pruners.HyperbandPruner(
            max_resource=space.budget.max_steps or "auto",
            reduction_factor=options["reduction_factor"],
        )
    return pruners.NopPruner()


def _grid_values(distribution: Any) -> list[Any] | None:
    if isinstance(distribution, Categorical):
        return list(distribution.choices)
    if isinstance(distribution, Float | Int) and distribution.n_values is not None:
        return [distribution.value_at(i) for i in range(distribution.n_values)]
    return None
