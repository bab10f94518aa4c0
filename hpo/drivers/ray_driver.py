"""Ray Tune: each trial is a function trainable run by ray.tune.Tuner. The only module importing ray.

    driver: {seed: 0, ray: {searcher: optuna, scheduler: asha, cpus_per_trial: 1}}

Searchers: random draws Ray domains (tune.uniform, loguniform, quniform, randint, lograndint,
qrandint, choice) with a generator seeded by (seed, trial number), so a seeded run repeats, in
parallel too; grid runs every distinct point once; optuna is Ray's OptunaSearch (TPE) with a
define-by-run space; bayesopt is a small Searcher over bayes_opt 3 (Ray's BayesOptSearch calls
bayes_opt.UtilityFunction, removed in bayes_opt 2). Conditions: optuna and grid never draw an
inactive param; random and bayesopt draw every param and drop the inactive ones before the
objective runs. Each searcher sits behind one wrapper that reserves trial numbers and keeps the
budget: it stops suggesting once complete + pruned trials (earlier runs included; failed ones
do not count) reach budget.trials. PBT refuses Searchers: its population comes from Ray's
variant generator, and an experiment with failed trials is followed by another for the rest.

Schedulers asha, hyperband, median and pbt measure time in reported steps. What Ray sees of a
trial: one tune.report per evaluation (a report holding the objective metric) with its step and
every report since the previous one, then a last one with done=True when the objective returns
(hpo_state: complete). A trial Ray ends before that was stopped by its scheduler or the timeout:
it ends pruned. An exception is Ray's trial error: retried max_failures times, then failed.
`--parallel K` is Ray's max concurrent trials; a local cluster gets at least K * cpus_per_trial
CPUs so that K trials do run at once.

Trial n runs in runs/<study>/trials/<n>/ (output in output.log). A tune Callback, which Ray runs
in the driver process, writes trial.json (through hpo.study) and calls the Tracker.
Checkpoints: with pbt each evaluation hands the runner's checkpoints/last.pt to Ray; a trial Ray
restarts from a checkpoint (PBT's exploit, a retry, a restored study) resumes from it through
reporter.resume_checkpoint, and an exploit is logged to trials/<n>/exploits.jsonl. A trial
restarted without one resumes from its own last.pt if it has one. Resume: Tuner.restore of the
study's last Ray experiment (runs/<study>/ray/); a trial whose trial.json says how it ended is
never run again, even where Ray's saved state (written every few seconds) lags behind.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
import math
import numbers
import os
import pickle
import shutil
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo.drivers.base import (
    FINISHED_STATES,
    SEED,
    MultiTracker,
    NullTracker,
    ObjectiveFunction,
    Option,
    StudySpec,
    Tracker,
    TrialPruned,
    TrialRecord,
)
from hpo.parallel import objective_values, redirect_output
from hpo.space import (
    Categorical,
    Distribution,
    Fixed,
    Float,
    Int,
    SearchSpace,
    SpaceError,
)
from hpo.study import (
    INTERRUPTED,
    LiveView,
    StudyResult,
    finish_study,
    load_trials,
    open_study,
    previous_trials,
    trial_dir,
    write_trial,
)
from runner.errors import UserInputError

OPTIONS: dict[str, Option] = {
    "seed": SEED,
    "searcher": Option(
        "random", "Ray search algorithm", choices=("random", "grid", "optuna", "bayesopt")
    ),
    "scheduler": Option(
        "none",
        "Ray trial scheduler: stops (or, pbt, exploits) trials by their reports",
        choices=("none", "asha", "hyperband", "median", "pbt"),
    ),
    "cpus_per_trial": Option(1, "CPUs Ray reserves for each trial", kind=float),
    "gpus_per_trial": Option(
        0, "GPUs Ray reserves for each trial; 0.5 puts two on a GPU", kind=float
    ),
    "max_failures": Option(
        0, "times Ray retries a failed trial (from its last checkpoint)", kind=int
    ),
    "address": Option(
        None,
        "join a running cluster: auto, HOST:PORT or ray://HOST:PORT; unset: start a local one",
        kind=str,
    ),
    "grace_period": Option(1, "asha, median: steps before a trial can be stopped", kind=int),
    "reduction_factor": Option(
        3, "asha, hyperband: 1 / fraction of trials kept at each rung", kind=int
    ),
    "min_samples_required": Option(3, "median: trials reported before it stops any", kind=int),
    "perturbation_interval": Option(
        1, "pbt: steps between exploits (1: every evaluation)", kind=int
    ),
    "quantile_fraction": Option(
        0.25, "pbt: the bottom fraction that clones the top one", kind=float
    ),
    "resample_probability": Option(
        0.25, "pbt: chance a param is resampled, not perturbed", kind=float
    ),
    "acquisition": Option("ucb", "bayesopt: acquisition function", choices=("ucb", "ei", "pi")),
    "init_points": Option(
        5, "bayesopt: random trials before the Gaussian process suggests", kind=int
    ),
}
EXPERIMENT_DONE = ".hpo_done"  # in a Ray experiment folder whose fit() returned
MAX_GRID = 100_000


def check_space(space: SearchSpace, fail: Callable[[str, str], SpaceError]) -> None:
    """Reject what the chosen searcher or scheduler cannot do, before Ray starts."""
    options = space.driver_options
    if options["searcher"] == "grid":
        size = 1
        for p in space.searched:
            if not _grid_values(p.distribution):
                raise fail(
                    f"params.{p.name}", "grid needs choices, a linear int range or a float step"
                )
            size *= len(_grid_values(p.distribution))
        if size > MAX_GRID:
            raise fail("params", f"a grid of {size} points; narrow it or use another searcher")
    if options["scheduler"] in ("asha", "hyperband") and space.budget.max_steps is None:
        raise fail(
            "budget.max_steps", f"scheduler {options['scheduler']} needs the steps of a full trial"
        )
    if options["scheduler"] == "pbt" and options["searcher"] not in ("random", "grid"):
        raise fail("driver.searcher", "pbt explores params itself: use searcher random or grid")
    for name in ("cpus_per_trial", "gpus_per_trial"):
        if options[name] < 0:
            raise fail(f"driver.{name}", f"must be >= 0, got {options[name]}")
    if options["cpus_per_trial"] == 0 and options["gpus_per_trial"] == 0:
        raise fail("driver.cpus_per_trial", "a trial needs a CPU or a GPU")


class RayDriver:
    """Runs a study with ray.tune.Tuner; see the module doc."""

    name = "ray"

    def run(
        self,
        space: SearchSpace,
        study: StudySpec,
        objective: ObjectiveFunction,
        tracker: Tracker | None = None,
    ) -> StudyResult:
        previous = previous_trials(study, space)
        with _ray_cluster(space.driver_options, study.parallel):  # a bad address stops here
            previous = open_study(study, space, self.name, previous)
            trackers = MultiTracker(
                *([] if study.quiet else [LiveView(space, previous)]), tracker or NullTracker()
            )
            trackers.start_study(space, study, self.name)
            events = _StudyEvents(space, study, trackers, previous)
            try:
                stop_reason = _Experiments(space, study, objective, events).run()
            except BaseException:
                events.interrupt()
                trackers.end_study(
                    finish_study(study, space, self.name, events.elapsed(), "interrupted")
                )
                raise
        result = finish_study(study, space, self.name, events.elapsed(), stop_reason)
        trackers.end_study(result)
        return result


@contextlib.contextmanager
def _ray_cluster(options: Mapping[str, Any], parallel: int) -> Iterator[None]:
    """Join the cluster at options['address'] or start a local one; leave it as it was found."""
    import ray

    if ray.is_initialized():  # the caller's (a notebook's, a test session's): leave it be
        _check_resources(options, ray.cluster_resources())
        yield
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    address = options["address"]
    if address:
        hint = "start one with `ray start --head` or leave address unset for a local one"
        if address != "auto" and not _answers(address):  # ray.init would wait for minutes
            raise UserInputError(f"driver.address {address}: nothing answers there; {hint}")
        try:  # with an address, ray.init only ever connects
            ray.init(address=address, **quiet)
        except ConnectionError as err:
            raise UserInputError(
                f"driver.address {address}: no Ray cluster there ({err}); {hint}"
            ) from None
    else:  # its workers import what this process can, as spawned worker processes do
        paths = os.pathsep.join(p for p in sys.path if p)
        cpus = max(os.cpu_count() or 1, math.ceil(parallel * options["cpus_per_trial"]))
        ray.init(
            num_cpus=cpus,
            include_dashboard=False,
            runtime_env={"env_vars": {"PYTHONPATH": paths}},
            **quiet,
        )
    try:
        _check_resources(options, ray.cluster_resources())
        yield
    finally:
        ray.shutdown()


def _answers(address: str) -> bool:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError):
        return False
    return True


def _check_resources(options: Mapping[str, Any], cluster: Mapping[str, float]) -> None:
    for key, resource in (("cpus_per_trial", "CPU"), ("gpus_per_trial", "GPU")):
        if options[key] > cluster.get(resource, 0):
            raise UserInputError(
                f"driver.{key}: a trial asks for {options[key]:g} {resource}; "
                f"the Ray cluster has {cluster.get(resource, 0):g}"
            )


# ----------------------------------------------------------------------------- experiments


class _Experiments:
    """The study's Ray experiments: the restored one, if any, then a new one while budget is left."""

    def __init__(
        self,
        space: SearchSpace,
        study: StudySpec,
        objective: ObjectiveFunction,
        events: _StudyEvents,
    ) -> None:
        self.space, self.study, self.events = space, study, events
        self.options = space.driver_options
        self.storage = (study.dir / "ray").resolve()
        self.setup = _TrialSetup(
            objective,
            space,
            str(study.dir.resolve()),
            checkpoints=self.options["scheduler"] == "pbt",
        )

    def run(self) -> str:
        from ray import tune

        made = sorted(self.storage.glob("trials-from-*"), key=lambda p: int(p.name.rsplit("-")[-1]))
        if made and not (made[-1] / EXPERIMENT_DONE).exists() and tune.Tuner.can_restore(made[-1]):
            self._fit(tune.Tuner.restore(str(made[-1]), trainable=self._trainable()), made[-1])
        while not (stop := self.events.why_stop()):
            if self.options["searcher"] == "grid" and not _untried_grid(self.space, self.study.dir):
                return "exhausted"
            ended = self.events.ended
            name = f"trials-from-{_next_free_number(self.study.dir)}"
            self._fit(self._tuner(name), self.storage / name)
            if self.events.ended == ended:  # the searcher had nothing left (a grid, say)
                return self.events.why_stop() or "exhausted"
        return stop

    def _fit(self, tuner: Any, path: Path) -> None:
        _LIVE[self.events.key] = self.events
        tune_log = logging.getLogger("ray.tune")
        level = tune_log.level
        tune_log.setLevel(logging.CRITICAL if self.study.quiet else level)
        try:  # Ray's banners go to stdout; the live view reports the trials
            with contextlib.redirect_stdout(io.StringIO()):
                tuner.fit()
            # Ray ends trials without a word at its time budget, and returns after Ctrl-C.
            if self.events.running and self.events.why_stop() != "timeout":
                raise KeyboardInterrupt
            for number, record in list(self.events.running.items()):
                self.events.end(number, record.params, {}, None)  # pruned by the timeout
        finally:
            tune_log.setLevel(level)
            del _LIVE[self.events.key]
        (path / EXPERIMENT_DONE).touch()

    def _trainable(self) -> Any:
        from ray import tune

        resources = {"cpu": self.options["cpus_per_trial"], "gpu": self.options["gpus_per_trial"]}
        return tune.with_resources(tune.with_parameters(_train_trial, setup=self.setup), resources)

    def _tuner(self, name: str) -> Any:
        from ray import tune

        objective, timeout = self.space.objective, self.space.budget.timeout
        if self.options["scheduler"] == "pbt":  # PBT takes no Searcher: Ray's variant generator
            search = _pbt_search(self.space, self.study, self.events.finished)
        else:  # num_samples -1: the searcher keeps the budget (failed trials do not count)
            search = {
                "search_alg": _searcher(self.space, self.study, self.events),
                "num_samples": -1,
                "max_concurrent_trials": self.study.parallel,
                "trial_name_creator": _TrialName(str(self.study.dir.resolve())),
            }
        param_space = search.pop("param_space", {})
        tune_config = tune.TuneConfig(
            metric=objective.metric,
            mode="min" if objective.direction == "minimize" else "max",
            scheduler=_scheduler(self.space),
            time_budget_s=None if timeout is None else max(1.0, timeout - self.events.elapsed()),
            trial_dirname_creator=_trial_dirname,
            reuse_actors=True,
            **search,
        )
        run_config = tune.RunConfig(
            name=name,
            storage_path=str(self.storage),
            verbose=0,
            failure_config=tune.FailureConfig(max_failures=self.options["max_failures"]),
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=4 if self.setup.checkpoints else None
            ),
            callbacks=[_events_callback(self.events.key)],
        )
        return tune.Tuner(
            self._trainable(),
            param_space=param_space,
            tune_config=tune_config,
            run_config=run_config,
        )


def _pbt_search(space: SearchSpace, study: StudySpec, finished: int) -> dict[str, Any]:
    """PBT's population from Ray's variant generator (PBT refuses Searchers): Ray domains
    seeded by the seed, or tune.grid_search; a failed trial is replaced by the next experiment."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    grid = space.driver_options["searcher"] == "grid"
    first = _next_free_number(study.dir)
    seed = space.driver_options["seed"]
    points = [dict(p) for p in study.enqueue] if not load_trials(study.dir) else None
    param_space = {
        p.name: tune.grid_search(_grid_values(p.distribution)) if grid else _domain(p.distribution)
        for p in space.searched
    }
    remaining = None if space.budget.trials is None else space.budget.trials - finished
    return {
        "param_space": param_space,
        "search_alg": BasicVariantGenerator(
            points_to_evaluate=points,
            max_concurrent=study.parallel,
            random_state=None if seed is None else seed + first,
        ),
        "num_samples": 1 if grid else remaining or -1,
        "trial_name_creator": _TrialName(str(study.dir.resolve())),
    }


def _scheduler(space: SearchSpace) -> Any:
    from ray.tune import schedulers

    options, max_t = space.driver_options, space.budget.max_steps
    grace, factor = options["grace_period"], options["reduction_factor"]
    return {
        "none": lambda: None,
        "asha": lambda: schedulers.ASHAScheduler(
            time_attr="step", max_t=max_t, grace_period=grace, reduction_factor=factor
        ),
        "hyperband": lambda: schedulers.HyperBandScheduler(
            time_attr="step", max_t=max_t, reduction_factor=factor
        ),
        "median": lambda: schedulers.MedianStoppingRule(
            time_attr="step",
            grace_period=grace,
            min_samples_required=options["min_samples_required"],
        ),
        "pbt": lambda: schedulers.PopulationBasedTraining(
            time_attr="step",
            perturbation_interval=options["perturbation_interval"],
            quantile_fraction=options["quantile_fraction"],
            resample_probability=options["resample_probability"],
            hyperparam_mutations={p.name: _mutation(p.distribution) for p in space.searched},
        ),
    }[options["scheduler"]]()


def _mutation(d: Distribution) -> Any:
    # PBT shifts a list's index and multiplies a domain's value (brought back into range later)
    return list(d.choices) if isinstance(d, Categorical) else _domain(d)


def _next_free_number(study_dir: Path) -> int:
    trials = study_dir / "trials"
    taken = [int(p.name) for p in trials.iterdir() if p.name.isdigit()] if trials.is_dir() else []
    return max(taken, default=-1) + 1


def _reserve_number(study_dir: Path) -> int:
    """The next free trials/<n>/ folder, taken by creating it (so restored runs never collide)."""
    number = _next_free_number(study_dir)
    while True:
        try:
            trial_dir(study_dir, number).mkdir(parents=True)
            return number
        except FileExistsError:
            number += 1


class _TrialName:
    """Ray's trial_name_creator: the trial number, as the searcher chose it or reserved here.

    Ray copies it into every trial it creates: the folders on disk, not a counter, say what is taken.
    """

    def __init__(self, study_dir: str) -> None:
        self.study_dir = study_dir

    def __call__(self, trial: Any) -> str:
        if "hpo_trial" in trial.config:
            return str(trial.config["hpo_trial"])
        return str(_reserve_number(Path(self.study_dir)))


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial}"


# ----------------------------------------------------------------------------- the space


def _domain(d: Distribution) -> Any:
    """The Ray Tune domain of a distribution; quantized ones only where Ray's grid is exact."""
    from ray import tune

    if isinstance(d, Categorical):
        return tune.choice(list(d.choices))
    if isinstance(d, Float):
        if d.step is not None:  # quniform rounds to multiples of step counted from 0
            exact = abs(d.low / d.step - round(d.low / d.step)) < 1e-9
            return tune.quniform(d.low, d.high, d.step) if exact else tune.choice(_grid_values(d))
        return tune.loguniform(d.low, d.high) if d.log else tune.uniform(d.low, d.high)
    if d.log:
        return tune.lograndint(d.low, d.high + 1)  # upper bound exclusive
    if d.step == 1:
        return tune.randint(d.low, d.high + 1)  # upper bound exclusive
    if d.low % d.step == 0:
        return tune.qrandint(d.low, d.high, d.step)  # upper bound inclusive
    return tune.choice(_grid_values(d))


def _grid_values(d: Distribution) -> list[Any]:
    if isinstance(d, Categorical):
        return list(d.choices)
    if isinstance(d, Float | Int) and d.n_values is not None:
        return [d.value_at(i) for i in range(d.n_values)]
    return []


def _grid_points(space: SearchSpace) -> list[dict[str, Any]]:
    """Every distinct trial of the grid: inactive params dropped, so no point repeats."""
    names = [p.name for p in space.searched]
    points: list[dict[str, Any]] = []
    for combo in itertools.product(*(_grid_values(p.distribution) for p in space.searched)):
        point = space.trial_params(dict(zip(names, combo, strict=True)))
        if point not in points:
            points.append(point)
    return points


def _untried_grid(space: SearchSpace, study_dir: Path) -> list[dict[str, Any]]:
    tried = [r.params for r in load_trials(study_dir) if r.state in FINISHED_STATES]
    return [p for p in _grid_points(space) if p not in tried]


def _trial_params(space: SearchSpace, config: Mapping[str, Any]) -> dict[str, Any]:
    """The params a trial runs with: back in the space (PBT perturbs past bounds), active ones only."""
    sampled = dict(config)
    for p in space.searched:
        d, value = p.distribution, sampled.get(p.name)
        if isinstance(d, Float | Int) and isinstance(value, numbers.Real):
            sampled[p.name] = d.from_sample(d.to_sample(min(max(value, d.low), d.high)))
    return space.trial_params(sampled)


class _OptunaSpace:
    """OptunaSearch's define-by-run space: a param is suggested only when its condition holds."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space

    def __call__(self, trial: Any) -> None:
        chosen: dict[str, Any] = {}
        for p in self.space.params:
            d = p.distribution
            if isinstance(d, Fixed) or not p.is_active(chosen):
                continue
            if isinstance(d, Categorical):
                chosen[p.name] = trial.suggest_categorical(p.name, list(d.choices))
            elif isinstance(d, Float):
                chosen[p.name] = trial.suggest_float(p.name, d.low, d.high, log=d.log, step=d.step)
            else:
                chosen[p.name] = trial.suggest_int(
                    p.name, d.low, d.high, log=d.log, step=1 if d.log else d.step
                )


# ----------------------------------------------------------------------------- searchers


def _searcher(space: SearchSpace, study: StudySpec, events: _StudyEvents) -> Any:
    """The study's ray.tune Searcher (a class made here: ray is imported only when it runs)."""
    import numpy as np
    from ray.tune.search import Searcher

    # The class is pickled with the experiment: it may refer to plain data and module functions,
    # never to `events` (the tracker behind it may not pickle, and must be the live one).
    options, metric = space.driver_options, space.objective.metric
    mode = "min" if space.objective.direction == "minimize" else "max"
    seed, budget, study_dir, key = (
        options["seed"],
        space.budget.trials,
        study.dir.resolve(),
        events.key,
    )
    parallel = study.parallel
    fresh = not load_trials(study.dir)  # enqueued params go first in a new study only
    enqueue = [dict(p) for p in study.enqueue] if fresh else []
    grid = _untried_grid(space, study.dir) if options["searcher"] == "grid" else []

    class StudySearcher(Searcher):
        """Reserves a trial number per suggestion, keeps the budget, asks `pick` for params."""

        def __init__(self, inner: Any = None) -> None:
            super().__init__(metric=metric, mode=mode)
            self.inner = inner  # OptunaSearch, or None: random, grid and bayesopt pick themselves
            self.live: dict[str, int] = {}  # Ray trial id -> trial number
            self.suggested = 0
            self.enqueue, self.grid = list(enqueue), list(grid)
            self.gp = (
                _bayes_optimizer(space, parallel) if options["searcher"] == "bayesopt" else None
            )
            self.coords: dict[str, dict[str, float]] = {}

        def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
            return True  # metric, mode and space were set at construction

        def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
            study_events = _live_events(key)  # None where Tune runs remotely (Ray Client)
            if (
                options["searcher"] == "grid"
                and not self.grid
                or (
                    study_events.why_stop()
                    if study_events
                    else budget is not None and self.suggested >= budget
                )
            ):
                return Searcher.FINISHED
            if (
                study_events
                and budget is not None
                and study_events.finished + len(self.live) >= budget
            ):
                return None  # ask again when a live trial ends: it may fail
            number = _reserve_number(study_dir)
            config = self.pick(trial_id, number)
            self.live[trial_id] = number
            self.suggested += 1
            return {**config, "hpo_trial": number}

        def pick(self, trial_id: str, number: int) -> dict[str, Any]:
            enqueued = self.enqueue.pop(0) if self.enqueue else {}
            if self.inner is not None:  # OptunaSearch's points_to_evaluate holds the enqueued
                return self.inner.suggest(trial_id)
            if options["searcher"] == "grid":
                return self.grid.pop(0)
            rng = np.random.RandomState(None if seed is None else [seed, number])
            drawn = {
                p.name: _domain(p.distribution).sample(random_state=rng) for p in space.searched
            }
            if options["searcher"] == "bayesopt":
                drawn = self._bayes(trial_id, number, drawn, enqueued)
            return _plain({**drawn, **enqueued})

        def _bayes(self, trial_id: str, number: int, drawn: dict, enqueued: dict) -> dict[str, Any]:
            params = {**drawn, **enqueued}
            if number >= options["init_points"] and len(self.gp.space) and not enqueued:
                params = _from_coords(space, self.gp.suggest())
            self.coords[trial_id] = _to_coords(space, params)
            return params

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if self.inner is not None:
                self.inner.on_trial_result(trial_id, result)

        def on_trial_complete(
            self, trial_id: str, result: dict | None = None, error: bool = False
        ) -> None:
            self.live.pop(trial_id, None)
            if self.inner is not None:
                self.inner.on_trial_complete(trial_id, result, error)
            coords, value = self.coords.pop(trial_id, None), (result or {}).get(metric)
            if (
                coords is not None
                and not error
                and (result or {}).get("hpo_state") == "complete"
                and isinstance(value, numbers.Real)
                and math.isfinite(value)
            ):
                self.gp.register(coords, value if mode == "max" else -value)  # it maximizes

        def save(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "wb") as f:
                pickle.dump(self.__dict__, f)

        def restore(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "rb") as f:
                self.__dict__.update(pickle.load(f))

    if options["searcher"] != "optuna":
        return StudySearcher()
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=parallel > 1)
    return StudySearcher(
        OptunaSearch(
            space=_OptunaSpace(space),
            metric=metric,
            mode=mode,
            sampler=sampler,
            points_to_evaluate=enqueue or None,
        )
    )


def _bayes_optimizer(space: SearchSpace, parallel: int) -> Any:
    """bayes_opt 3 over the sample coordinates: log10 for log params, an index for choices."""
    from bayes_opt import BayesianOptimization, acquisition

    options = space.driver_options
    acq = {
        "ucb": acquisition.UpperConfidenceBound,
        "ei": acquisition.ExpectedImprovement,
        "pi": acquisition.ProbabilityOfImprovement,
    }[options["acquisition"]]()
    if parallel > 1:  # pending suggestions get a made-up value, so that they spread out
        acq = acquisition.ConstantLiar(acq, strategy="min")
    bounds = {
        p.name: (0.0, float(len(p.distribution.choices)))
        if isinstance(p.distribution, Categorical)
        else p.distribution.sample_bounds()
        for p in space.searched
    }
    return BayesianOptimization(
        f=None,
        pbounds=bounds,
        acquisition_function=acq,
        random_state=options["seed"],
        verbose=0,
        allow_duplicate_points=True,
    )


def _from_coords(space: SearchSpace, coords: Mapping[str, float]) -> dict[str, Any]:
    values = {}
    for p in space.searched:
        d, x = p.distribution, float(coords[p.name])
        values[p.name] = (
            d.choices[min(int(x), len(d.choices) - 1)]
            if isinstance(d, Categorical)
            else d.from_sample(x)
        )
    return values


def _to_coords(space: SearchSpace, values: Mapping[str, Any]) -> dict[str, float]:
    return {
        p.name: p.distribution.choices.index(values[p.name]) + 0.5
        if isinstance(p.distribution, Categorical)
        else p.distribution.to_sample(values[p.name])
        for p in space.searched
    }


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """numpy scalars from Ray's samplers as Python numbers (YAML and JSON want those)."""
    return {k: v.item() if hasattr(v, "item") else v for k, v in params.items()}


# ----------------------------------------------------------------------------- in the Ray worker


@dataclass(frozen=True)
class _TrialSetup:
    """What every trial of the study shares (sent once to Ray's object store)."""

    objective: ObjectiveFunction
    space: SearchSpace
    study_dir: str  # absolute: Ray workers do not run in the driver's directory
    checkpoints: bool  # hand the runner's last.pt to Ray at each evaluation (pbt)


class _RayReporter:
    """The TrialReporter inside a Ray trial: one tune.report per evaluation of the metric."""

    def __init__(
        self, number: int, directory: Path, params: dict[str, Any], setup: _TrialSetup
    ) -> None:
        self.number, self.dir, self.params = number, directory, params
        self.metric = setup.space.objective.metric
        self.max_steps = setup.space.budget.max_steps
        self.checkpoints = setup.checkpoints
        self.resume_checkpoint: str | None = None  # RunnerObjective starts from it when set
        self.steps = 0
        self.pending: list[list[Any]] = []  # [step, metrics] not yet sent to Ray

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        plain = {str(k): float(v) for k, v in metrics.items() if isinstance(v, numbers.Real)}
        self.steps = max(self.steps, int(step))
        self.pending.append([int(step), plain])
        # The last evaluation rides with the complete report: at max_t ASHA and HyperBand stop
        # a trial, and the objective's value would never reach Ray.
        if self.metric in plain and (self.max_steps is None or step < self.max_steps):
            self.send(plain, checkpoint=self.checkpoints)

    def should_stop(self) -> bool:
        return False  # Ray stops a trial itself: its tune.report does not return

    def send(self, metrics: Mapping[str, float], checkpoint: bool = False, **extra: Any) -> None:
        from ray import tune

        result = {**metrics, "step": self.steps, "hpo_reports": json.dumps(self.pending), **extra}
        self.pending = []
        last = self.dir / "checkpoints" / "last.pt"
        if not checkpoint or not last.is_file():
            tune.report(result)
            return
        with tempfile.TemporaryDirectory(prefix="hpo-ckpt-") as folder:
            try:  # the runner replaces last.pt by rename, so a link keeps this one
                os.link(last, Path(folder) / "last.pt")
            except OSError:
                shutil.copyfile(last, Path(folder) / "last.pt")
            (Path(folder) / "hpo.json").write_text(
                json.dumps({"trial": self.number, "step": self.steps})
            )
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))


def _train_trial(config: dict[str, Any], setup: _TrialSetup) -> None:
    """Ray's function trainable: one trial of the objective, in runs/<study>/trials/<n>/."""
    from ray import tune

    number = int(tune.get_context().get_trial_name())
    directory = trial_dir(Path(setup.study_dir), number)
    directory.mkdir(parents=True, exist_ok=True)
    redirect_output(directory / "output.log")
    params = _trial_params(setup.space, config)
    reporter = _RayReporter(number, directory, params, setup)
    settled = _settled_record(directory)
    if settled is not None:  # it ended before Ray last saved its state: not run twice
        if settled.state == "complete":
            values = dict(
                zip([o.metric for o in setup.space.objectives], settled.values, strict=True)
            )
            reporter.send(values, done=True, hpo_state="complete", hpo_values=json.dumps(values))
        return
    checkpoint = tune.get_checkpoint()
    with contextlib.ExitStack() as stack:
        if checkpoint is not None:
            folder = Path(stack.enter_context(checkpoint.as_directory()))
            reporter.resume_checkpoint = str(folder / "last.pt")
            donor = json.loads((folder / "hpo.json").read_text())
            if donor["trial"] != number:  # PBT's exploit: the donor's weights, this trial's params
                _log_exploit(directory / "exploits.jsonl", donor, params)
        elif (
            directory / "checkpoints" / "last.pt"
        ).is_file():  # a retry, a paused or restored trial
            reporter.resume_checkpoint = str(directory / "checkpoints" / "last.pt")
        try:
            value = setup.objective(dict(params), reporter)
        except TrialPruned:
            return  # no complete report: it ends pruned
        except Exception:
            (directory / "traceback.txt").write_text(traceback.format_exc())
            raise  # Ray's trial error: retried max_failures times, then failed
    if isinstance(value, Mapping):
        values = {str(k): float(v) for k, v in value.items() if isinstance(v, numbers.Real)}
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        values = {reporter.metric: float(value)}
    else:
        raise TypeError(
            f"the objective returned {type(value).__name__}; return a number or {{metric: value}}"
        )
    ray_value = values.get(reporter.metric, math.nan)  # every result Ray sees holds the metric
    reporter.send(
        {**values, reporter.metric: ray_value},
        done=True,  # done: no scheduler acts on it
        hpo_state="complete",
        hpo_values=json.dumps(values),
    )


def _log_exploit(path: Path, donor: dict[str, Any], params: dict[str, Any]) -> None:
    line = {"step": donor["step"], "from_trial": donor["trial"], "params": params}
    logged = [json.loads(text) for text in path.read_text().splitlines()] if path.exists() else []
    if not logged or (logged[-1]["step"], logged[-1]["from_trial"]) != (
        line["step"],
        line["from_trial"],
    ):
        with open(path, "a") as log:  # not again when a paused trial resumes from the same one
            log.write(json.dumps(line) + "\n")


def _settled_record(directory: Path) -> TrialRecord | None:
    path = directory / "trial.json"
    record = TrialRecord.from_dict(json.loads(path.read_text())) if path.is_file() else None
    if record is None or record.state == "running" or record.reason == INTERRUPTED:
        return None
    return record


# ----------------------------------------------------------------------------- in the driver process


_LIVE: dict[str, _StudyEvents] = {}  # study key -> its events while a fit runs


def _live_events(key: str) -> _StudyEvents | None:
    # Callbacks and searchers reach _LIVE through this function only: cloudpickle copies the
    # globals a class it pickles by value refers to, and Ray pickles both with the experiment.
    return _LIVE.get(key)


class _StudyEvents:
    """The driver-process side of the trials: trial.json files, tracker calls, budget counts."""

    def __init__(
        self,
        space: SearchSpace,
        study: StudySpec,
        tracker: Tracker,
        previous: Sequence[TrialRecord],
    ) -> None:
        self.space, self.study, self.tracker = space, study, tracker
        self.key = str(study.dir.resolve())
        self.started = time.monotonic()
        self.settled = {
            r.number for r in previous if r.state != "failed" or r.reason != INTERRUPTED
        }
        self.finished = sum(1 for r in previous if r.state in FINISHED_STATES)
        self.failed = 0  # in this run: as many failures as budget.trials end the study
        self.ended = 0  # trials ended in this run
        self.running: dict[int, TrialRecord] = {}
        self.last_value: dict[int, float] = {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def why_stop(self) -> str | None:
        budget = self.space.budget
        if budget.timeout is not None and self.elapsed() >= budget.timeout:
            return "timeout"
        if budget.trials is not None and self.failed >= budget.trials:
            return "failures"
        if budget.trials is not None and self.finished >= budget.trials:
            return "budget"
        return None

    def start(self, number: int, params: dict[str, Any]) -> TrialRecord | None:
        if number in self.settled:
            return None
        if number not in self.running:  # PBT and HyperBand restart trials: one start each
            self.running[number] = TrialRecord(number, params, started=time.time())
            write_trial(self.study.dir, self.running[number])
            self.tracker.start_trial(number, params)
        return self.running[number]

    def result(self, number: int, params: dict[str, Any], result: Mapping[str, Any]) -> None:
        record = self.start(number, params)
        if record is None:
            return
        for step, metrics in json.loads(result.get("hpo_reports", "[]")):
            record.steps = max(record.steps, step)
            self.tracker.log_metrics(number, step, metrics)
        value = result.get(self.space.objective.metric)
        if "hpo_state" not in result and isinstance(value, float) and math.isfinite(value):
            self.last_value[number] = value

    def end(
        self, number: int, params: dict[str, Any], last: Mapping[str, Any], error: str | None
    ) -> None:
        record = self.start(number, params)
        if record is None:
            return
        record.params = params  # PBT changes them as the trial goes
        if error is not None:
            record.state, record.reason = "failed", error
        elif last.get("hpo_state") == "complete":
            values = json.loads(last["hpo_values"])
            record.values, record.reason = objective_values(values, self.space.objectives)
            record.state = "failed" if record.reason else "complete"
        else:
            value = self.last_value.get(number)
            record.state, record.values = "pruned", None if value is None else [value]
            timeout, scheduler = self.space.budget.timeout, self.space.driver_options["scheduler"]
            by = (
                "the study's timeout"
                if timeout and self.elapsed() >= timeout
                else f"Ray's {scheduler} scheduler"
                if scheduler != "none"
                else "the objective (TrialPruned)"
            )
            record.reason = f"stopped by {by} at step {record.steps}"
        record.duration = time.time() - record.started
        del self.running[number]
        write_trial(self.study.dir, record)  # before Ray saves its state: restores never rerun it
        self.settled.add(number)
        self.ended += 1
        self.finished += record.state in FINISHED_STATES
        self.failed += record.state == "failed"
        self.tracker.end_trial(record)

    def interrupt(self) -> None:
        for number, record in list(self.running.items()):
            self.end(number, record.params, {}, INTERRUPTED)


def _events_callback(key: str) -> Any:
    """A tune Callback relaying Ray's trial events to the study's _StudyEvents."""
    from ray import tune

    class EventsCallback(tune.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.key = key

        def _relay(self, trial: Any) -> tuple[_StudyEvents | None, int, dict[str, Any]]:
            events = _live_events(self.key)
            if events is None:  # not the process running the study (Ray Client runs Tune remotely)
                return None, -1, {}
            return events, int(str(trial)), _trial_params(events.space, trial.config)

        def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            events, number, params = self._relay(trial)
            if events:
                events.start(number, params)

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            events, number, params = self._relay(trial)
            if events:
                events.result(number, params, result)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            events, number, params = self._relay(trial)
            if events:
                events.end(number, params, trial.last_result or {}, None)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            events, number, params = self._relay(trial)
            if events:
                events.end(number, params, trial.last_result or {}, _error_reason(trial))

    return EventsCallback()


def _error_reason(trial: Any) -> str:
    """The exception the trial raised, as 'Type: message' (Ray wraps it in a RayTaskError)."""
    from ray import cloudpickle

    try:
        with open(trial.pickled_error_file, "rb") as f:
            error = cloudpickle.load(f)
    except Exception:  # no pickled error (an old Ray, a remote driver): Ray's text file
        lines = Path(trial.error_file).read_text().splitlines() if trial.error_file else []
        return next((line for line in reversed(lines) if line.strip()), "the trial failed in Ray")
    cause = getattr(error, "cause", None) or error
    if type(cause).__module__.startswith("ray."):  # the worker died: Ray's own words
        return str(cause).strip().splitlines()[0]
    return f"{type(cause).__name__}: {cause}"
