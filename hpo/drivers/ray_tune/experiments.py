"""The study's Ray experiments: one Tuner.fit after another until the budget is spent.

Scheduler auto is Tune's FIFO: under searcher optuna the searcher prunes (searchers.py).
Schedulers asha, hyperband, median and pbt measure time in reported steps. PBT refuses
Searchers: its population is hpo's own draws (searcher random) or grid points (searcher grid,
in the grid's product order), handed to Ray's variant generator as points to evaluate, and an
experiment with failed trials is followed by another for the rest. Ray ends trials without a word at the study's
timeout: they end pruned.

Resume: Tuner.restore of the study's last Ray experiment (runs/<study>/ray/trials-from-<n>/)
when its fit never returned (kill -9) or was interrupted (Ctrl-C: Tune saved its state); the
interrupted trials it runs again continue from their last.pt. A trial whose trial.json says
how it ended is never run again, even where Ray's saved state (written every few seconds) lags
behind; an interrupted trial that saved state never knew is recorded failed.
"""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path
from typing import Any

from hpo.drivers.base import FINISHED_STATES, ObjectiveFunction, StudySpec
from hpo.drivers.ray_tune.domains import ray_domain
from hpo.drivers.ray_tune.events import StudyEvents, events_callback, live_study
from hpo.drivers.ray_tune.searchers import optuna_prunes, study_searcher
from hpo.drivers.ray_tune.trainable import TrialSetup, train_trial
from hpo.drivers.ray_tune.trial_numbers import TrialName, next_free_number, trial_dirname
from hpo.space import Categorical, Distribution, SearchSpace
from hpo.study import load_trials
from hpo.suggesters.grid import grid_points
from hpo.suggesters.optuna_samplers import sampler_name
from hpo.suggesters.random import RandomDraws

EXPERIMENT_DONE = ".hpo_done"  # in a Ray experiment folder whose fit() returned


class Experiments:
    """The study's Ray experiments: the restored one, if any, then a new one while budget is left."""

    def __init__(
        self,
        space: SearchSpace,
        study: StudySpec,
        objective: ObjectiveFunction,
        events: StudyEvents,
    ) -> None:
        self.space, self.study, self.events, self.book = space, study, events, events.book
        self.options = space.driver_options
        self.storage = (study.dir / "ray").resolve()
        self.setup = TrialSetup(
            objective,
            space,
            str(study.dir.resolve()),
            # what PBT exploits, and what a retried trial resumes from on whichever node
            checkpoints=self.options["scheduler"] == "pbt" or self.options["max_failures"] > 0,
            optuna_prunes=optuna_prunes(space),
        )

    def run(self) -> str:
        from ray import tune

        made = sorted(self.storage.glob("trials-from-*"), key=lambda p: int(p.name.rsplit("-")[-1]))
        if made and not (made[-1] / EXPERIMENT_DONE).exists() and tune.Tuner.can_restore(made[-1]):
            self._fit(tune.Tuner.restore(str(made[-1]), trainable=self._trainable()), made[-1])
        if not self.book.stop_requested():
            self.events.fail_unrestored()
        while not (stop := self.book.why_stop()):
            if self._grid_done():
                return "exhausted"
            ended = self.book.ended
            name = f"trials-from-{next_free_number(self.study.dir)}"
            self._fit(self._tuner(name), self.storage / name)
            if self.book.ended == ended:  # the searcher had nothing left (a grid, say)
                return self.book.why_stop() or "exhausted"
        return stop

    def _grid_done(self) -> bool:
        """Searcher grid, or searcher optuna with sampler grid: done once every point ran (a
        new experiment's GridSampler would start the grid again)."""
        return sampler_name(self.space) == "grid" and not self._untried()

    def _untried(self) -> list[dict[str, Any]]:
        """The grid's points no finished trial ran (searcher grid)."""
        tried = [r.params for r in load_trials(self.study.dir) if r.state in FINISHED_STATES]
        return [point for point in grid_points(self.space) if point not in tried]

    def _fit(self, tuner: Any, path: Path) -> None:
        tune_log = logging.getLogger("ray.tune")
        level = tune_log.level
        tune_log.setLevel(logging.CRITICAL if self.study.quiet else level)
        stopping_hints = logging.getLogger("ray.tune.tune")
        stopping_hints.addFilter(_without_tune_stop_hints)
        try:  # Ray's banners go to stdout; the live view reports the trials
            with live_study(self.events), contextlib.redirect_stdout(io.StringIO()):
                tuner.fit()
            if self.book.stop_requested():  # Ctrl-C: Tune saved its state; restored later
                return
            # Ray ends trials without a word at its time budget.
            if self.book.running and self.book.why_stop() != "timeout":
                raise KeyboardInterrupt
            for number, trial in list(self.book.running.items()):
                self.events.end(number, trial.params, {}, None)  # pruned by the timeout
        finally:
            tune_log.setLevel(level)
            stopping_hints.removeFilter(_without_tune_stop_hints)
        (path / EXPERIMENT_DONE).touch()

    def _trainable(self) -> Any:
        from ray import tune

        resources = {"cpu": self.options["cpus_per_trial"], "gpu": self.options["gpus_per_trial"]}
        return tune.with_resources(tune.with_parameters(train_trial, setup=self.setup), resources)

    def _tuner(self, name: str) -> Any:
        from ray import tune

        objective, timeout = self.space.objective, self.space.budget.timeout
        if self.options["scheduler"] == "pbt":  # PBT takes no Searcher: Ray's variant generator
            search = _pbt_search(self.space, self.study, self.book.finished, self._untried())
        else:  # num_samples -1: the searcher keeps the budget (failed trials do not count)
            search = {
                "search_alg": study_searcher(self.space, self.study, self.events),
                "num_samples": -1,
                "max_concurrent_trials": self.study.parallel,
                "trial_name_creator": TrialName(str(self.study.dir.resolve())),
            }
        param_space = search.pop("param_space", {})
        tune_config = tune.TuneConfig(
            metric=objective.metric,
            mode="min" if objective.direction == "minimize" else "max",
            scheduler=_scheduler(self.space),
            time_budget_s=None if timeout is None else max(1.0, timeout - self.book.elapsed()),
            trial_dirname_creator=trial_dirname,
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
            callbacks=[events_callback(self.events.key)],
        )
        return tune.Tuner(
            self._trainable(),
            param_space=param_space,
            tune_config=tune_config,
            run_config=run_config,
        )


def _without_tune_stop_hints(record: logging.LogRecord) -> bool:
    """Tune's lines on a stop (Ctrl-C) name its own restore call; hpo says --resume instead."""
    message = str(record.msg)
    return not message.startswith(("Stop signal received", "Experiment has been interrupted"))


def _pbt_search(
    space: SearchSpace, study: StudySpec, finished: int, untried: list[dict[str, Any]]
) -> dict[str, Any]:
    """PBT's population (PBT refuses Searchers): hpo's random draws for the next trial numbers
    (as --driver random draws them), or the untried grid points; every searched param is in
    a trial's config, inactive ones too, since PBT may exploit a donor where they are active.
    Without budget.trials a population of --parallel trials, then another experiment; a
    failed trial is replaced by the next experiment."""
    from ray.tune.search.basic_variant import BasicVariantGenerator

    first = next_free_number(study.dir)
    draws = RandomDraws(space, space.driver_options["seed"], study.enqueue)
    if space.driver_options["searcher"] == "grid":
        points = [{**draws.draw_all(first + i), **p} for i, p in enumerate(untried)]
    else:
        trials = space.budget.trials
        count = study.parallel if trials is None else trials - finished
        points = [draws.draw_all(first + i) for i in range(count)]
    return {  # Ray takes only the points of keys its param_space has: placeholders, replaced
        "param_space": {name: None for name in [*points[0], "hpo_trial"]} if points else {},
        "search_alg": BasicVariantGenerator(
            points_to_evaluate=[{**p, "hpo_trial": first + i} for i, p in enumerate(points)],
            max_concurrent=study.parallel,
        ),
        "num_samples": len(points),
        "trial_name_creator": TrialName(str(study.dir.resolve())),
    }


def _scheduler(space: SearchSpace) -> Any:
    from ray.tune import schedulers

    options, max_t = space.driver_options, space.budget.max_steps
    grace, factor = options["grace_period"], options["reduction_factor"]
    return {
        "auto": lambda: None,  # Optuna's pruner, if any, is the searcher's (searchers.py)
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
    return list(d.choices) if isinstance(d, Categorical) else ray_domain(d)
