"""Ray Tune: ray.tune.Tuner runs each trial as a function trainable; only here is ray imported.

    driver: {seed: 0, ray: {searcher: random, scheduler: asha, cpus_per_trial: 1}}

Ray is the executor and scheduler here, not a second set of algorithms: every searcher is
hpo's own (hpo.suggesters, the code the local drivers run), wrapped in a Tune Searcher
(searchers.py). By default (searcher optuna, scheduler auto) it tries what --driver optuna
tries: the optuna driver's sampler and pruner, built from the same options (sampler, pruner,
n_startup_trials..., flat or in the space's `optuna:` section, which ray reads too); random
tries what --driver random tries, grid what --driver optuna's sampler grid tries, bayesopt
what --driver bo tries (its options also from a `bo:` section). What only Ray has is kept:
the cluster, resources per trial, and its schedulers (asha, hyperband, median, pbt).

One module per part, each importing ray only inside the functions that run a study:
    cluster.py        joins the cluster at driver.address, or starts a local one; resource checks
    experiments.py    the study's Tuner runs: schedulers, PBT's population, restore and resume
    searchers.py      the Searcher over hpo's algorithm: trial numbers, budget, Optuna's pruning
    domains.py        the space in Ray's terms (PBT's population), a trial's params
    trial_numbers.py  trial n is Ray's trial "n" and runs in runs/<study>/trials/<n>/
    trainable.py      what runs in the Ray worker: the objective, its reports and checkpoints
    events.py         what runs in this process: Ray's trial events in hpo.trial_book's TrialBook

Ctrl-C or SIGTERM: Tune's own SIGINT handler is turned off (TUNE_DISABLE_SIGINT_HANDLER)
and hpo.interrupts.StopSignals takes both signals. The first asks Tune to stop through the
SIGUSR1 handler Tune installs while it fits (its "stop gracefully" path: Tune saves the
experiment's state and stops the trial actors); the trials still running end `interrupted`,
the outputs are written and stop_reason is "interrupted" (exit 130). A Ray trial runs in a
worker thread, where the runner cannot take signals: it stops where Tune stops it, and its last
saved last.pt (every evaluation) is what --resume continues from: Tuner.restore starts the
experiment's unfinished trials again, same number and params, and the trainable resumes from
the trial's last.pt. A second Ctrl-C stops at once (KeyboardInterrupt in the driver).

`--parallel K` is Ray's max concurrent trials. Trial n runs in runs/<study>/trials/<n>/
(output in output.log); Ray's own state and checkpoints are in runs/<study>/ray/. On a cluster
of several machines both must be on storage every node sees (the same path on each).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

from hpo.drivers.base import SEED, ObjectiveFunction, Option, StudySpec, Tracker
from hpo.drivers.ray_tune.cluster import ray_cluster
from hpo.drivers.ray_tune.events import StudyEvents
from hpo.drivers.ray_tune.experiments import Experiments
from hpo.drivers.ray_tune.searchers import optuna_prunes
from hpo.methods import method
from hpo.space import SearchSpace, SpaceError
from hpo.study import StudyResult, open_study, previous_trials
from hpo.suggesters.bayes_opt import BAYES_OPT_OPTIONS, bayes_opt_settings, check_bayes_opt_space
from hpo.suggesters.grid import check_grid
from hpo.suggesters.optuna_options import OPTUNA_OPTIONS, check_optuna_space
from hpo.suggesters.optuna_pruners import pruner_name, pruner_settings
from hpo.suggesters.optuna_samplers import sampler_name, sampler_settings
from hpo.trial_book import StudyRun

__all__ = ["OPTIONS", "RayDriver", "check_space", "search_method"]

# Optuna's sampler and pruner options, which searcher optuna and scheduler auto read (the
# optuna driver's storage options are not among them; the seed is ray's own, below), and
# bayes_opt's, which searcher bayesopt reads.
SHARED = {
    "optuna": tuple(name for name in OPTUNA_OPTIONS if name != "seed"),
    "bo": tuple(name for name in BAYES_OPT_OPTIONS if name != "seed"),
}
"""What ray takes from a space's `optuna:` and `bo:` sections too (resolve_options): the same
study."""
OPTIONS: dict[str, Option] = {
    **{name: OPTUNA_OPTIONS[name] for name in SHARED["optuna"]},
    **{name: BAYES_OPT_OPTIONS[name] for name in SHARED["bo"]},
    "seed": SEED,
    "searcher": Option(
        "optuna",
        "hpo's own algorithms, the same params as the local drivers: optuna: the sampler "
        "driver.sampler names (--driver optuna); random: --driver random; grid: --driver "
        "optuna's sampler grid; bayesopt: --driver bo",
        choices=("optuna", "random", "grid", "bayesopt"),
    ),
    "scheduler": Option(
        "auto",
        "auto: under searcher optuna, the pruner driver.pruner names, as --driver optuna uses "
        "it; under the others none. asha, hyperband, median, pbt: Ray's schedulers, which stop "
        "(or, pbt, exploit) trials by their reports",
        choices=("auto", "none", "asha", "hyperband", "median", "pbt"),
    ),
    "cpus_per_trial": Option(1, "CPUs Ray reserves for each trial", kind=float, low=0),
    "gpus_per_trial": Option(
        0, "GPUs Ray reserves for each trial; 0.5 puts two on a GPU", kind=float, low=0
    ),
    "max_failures": Option(
        0,
        "times Ray retries a failed trial or one on a lost node (-1: without end); > 0 also "
        "hands every evaluation's checkpoint to Ray, and a retry resumes from the last one",
        kind=int,
        low=-1,
    ),
    "address": Option(
        None,
        "join a running cluster: auto, HOST:PORT or ray://HOST:PORT; unset: start a local one",
        kind=str | None,
    ),
    "grace_period": Option(
        1,
        "asha, median: steps before a trial can be stopped (asha: at most max_steps)",
        kind=int,
        low=1,
    ),
    "reduction_factor": Option(
        3,
        "asha, hyperband schedulers; successive_halving, hyperband pruners: 1 / fraction of "
        "trials kept at each rung",
        kind=int,
        low=2,
    ),
    "min_samples_required": Option(
        3, "median: trials reported before it stops any", kind=int, low=1
    ),
    "perturbation_interval": Option(
        1, "pbt: steps between exploits (1: every evaluation)", kind=int, low=1
    ),
    "quantile_fraction": Option(
        0.25, "pbt: the bottom fraction that clones the top one", kind=float, low=0, high=0.5
    ),
    "resample_probability": Option(
        0.25, "pbt: chance a param is resampled, not perturbed", kind=float, low=0, high=1
    ),
}
_TUNE_SIGINT = "TUNE_DISABLE_SIGINT_HANDLER"


def check_space(space: SearchSpace, fail: Callable[[str, str], SpaceError]) -> None:
    """Reject what the chosen searcher or scheduler cannot do, before Ray starts."""
    options = space.driver_options
    if options["searcher"] == "optuna":
        check_optuna_space(space, fail)  # its sampler and pruner: what optuna cannot do
    elif options["sampler"] != "auto":
        raise fail("driver.sampler", f"searcher {options['searcher']} picks params itself")
    if options["pruner"] != "auto" and (
        options["scheduler"] != "auto" or options["searcher"] != "optuna"
    ):
        raise fail("driver.pruner", "Optuna's pruner needs searcher optuna and scheduler auto")
    if options["searcher"] == "grid":  # counted, not listed: a 1e9-value range is one line
        check_grid(space, fail, "grid needs choices, a linear int range or a float step")
    if options["searcher"] == "bayesopt":
        check_bayes_opt_space(space, fail, "searcher bayesopt")
    if options["scheduler"] in ("asha", "hyperband") and space.budget.max_steps is None:
        raise fail(
            "budget.max_steps", f"scheduler {options['scheduler']} needs the steps of a full trial"
        )
    if options["scheduler"] == "asha" and options["grace_period"] > space.budget.max_steps:
        raise fail(  # Ray asserts this inside the cluster; say it before the cluster starts
            "driver.grace_period",
            f"asha stops no trial before grace_period {options['grace_period']} steps, "
            f"more than budget.max_steps {space.budget.max_steps}",
        )
    if options["scheduler"] == "pbt" and options["searcher"] not in ("random", "grid"):
        raise fail("driver.searcher", "pbt explores params itself: use searcher random or grid")
    if options["cpus_per_trial"] == 0 and options["gpus_per_trial"] == 0:
        raise fail("driver.cpus_per_trial", "a trial needs a CPU or a GPU")


_SCHEDULER_SETTINGS = {
    "asha": ("grace_period", "reduction_factor"),
    "hyperband": ("reduction_factor",),
    "median": ("grace_period", "min_samples_required"),
    "pbt": ("perturbation_interval", "quantile_fraction", "resample_probability"),
}


def search_method(space: SearchSpace, study: StudySpec) -> dict[str, Any]:
    """The searcher as the local driver running it says it (hpo's own algorithm); under
    scheduler auto the optuna driver's pruner, else Ray's scheduler (named ray_...)."""
    options = space.driver_options
    searcher, scheduler = options["searcher"], options["scheduler"]
    sampler: tuple[str, dict[str, Any]] = {
        "optuna": lambda: (sampler_name(space), sampler_settings(space, study.parallel)),
        "grid": lambda: (sampler_name(space), sampler_settings(space, study.parallel)),
        "random": lambda: ("random", {"seed": options["seed"]}),
        "bayesopt": lambda: ("bayes_opt", bayes_opt_settings(options, study.parallel)),
    }[searcher]()
    if scheduler in ("auto", "none"):
        prunes = optuna_prunes(space)
        pruner = pruner_name(space) if prunes else "none", pruner_settings(space) if prunes else {}
    else:
        settings = {name: options[name] for name in _SCHEDULER_SETTINGS[scheduler]}
        if scheduler in ("asha", "hyperband"):
            settings["max_t"] = space.budget.max_steps
        pruner = f"ray_{scheduler}", settings
    return method(*sampler, *pruner)


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
        with ray_cluster(space.driver_options, study.parallel):  # a bad address stops here
            previous = open_study(study, space, self.name, previous)
            run = StudyRun(self.name, space, study, objective, tracker, previous)
            events = StudyEvents(run.book, previous)
            with run.running() as stop, _tune_sigint_handler_off():
                stop.on_stop(_stop_tune)
                try:
                    stop_reason = Experiments(space, study, objective, events).run()
                except BaseException as err:
                    events.interrupt()
                    run.finish_after(err)
                    raise
                if stop_reason == "interrupted":
                    events.interrupt()
                result = run.finish(stop_reason)
        return result


@contextlib.contextmanager
def _tune_sigint_handler_off() -> Iterator[None]:
    """Tune installs no SIGINT handler of its own while StopSignals has the signal."""
    before = os.environ.get(_TUNE_SIGINT)
    os.environ[_TUNE_SIGINT] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[_TUNE_SIGINT]
        else:
            os.environ[_TUNE_SIGINT] = before


def _stop_tune() -> None:
    """Ask a running Tuner.fit to stop gracefully: Tune's SIGUSR1 handler, when installed."""
    if callable(signal.getsignal(signal.SIGUSR1)):  # not SIG_DFL, which would end the process
        os.kill(os.getpid(), signal.SIGUSR1)
