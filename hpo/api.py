"""hpo's Python API: hpo.search and hpo.train, for notebooks and scripts.

The `hpo search` and `hpo train` commands build the same options and call the same functions
(run_search, load_train_config, run_train), so the command and the API cannot drift: the same
checks, in the same order, raising the same typed exceptions (hpo.errors), which the command
prints as `hpo: error: ...` lines. What a search is given and its checks (SearchOptions,
prepare_search, override_strings) are hpo.search_options; what it returns (SearchResult,
check_outcome) hpo.search_result; this module re-exports them.

Example:
    >>> import hpo
    >>> result = hpo.search(
    ...     space={"params": {"x": {"type": "float", "low": -1, "high": 1}},
    ...            "objective": {"metric": "loss", "direction": "minimize"}},
    ...     objective=lambda params, reporter: params["x"] ** 2,
    ...     trials=8, study="bowl", track=False)
    >>> result.best_params, result.best_value
    ({'x': 0.01...}, 0.0001...)

Ctrl-C (a notebook's "interrupt the kernel") inside hpo.search stops the study as it stops
`hpo search`: running trials end at their next report (the runner's after its current step,
saving checkpoints/last.pt) and are recorded `interrupted`, summary.json is written, and then
hpo.search raises KeyboardInterrupt. The study is resumable: call hpo.search again with the
same space and study and resume=True. A second Ctrl-C stops at once; the study is still
resumable (every file is written atomically).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import SearchFailed
from hpo.search_options import (
    Overrides,
    SearchOptions,
    override_strings,
    prepare_search,
    yaml_scalar,
)
from hpo.search_result import SearchResult, check_outcome
from runner.errors import UsageError, UserInputError

if TYPE_CHECKING:
    from runner.config import TrialConfig
    from runner.result import TrialResult

DEFAULT_EXPERIMENT = "experiments/lm_tiny.yaml"


# ----------------------------------------------------------------------------- search


def search(
    space: str | Path | Mapping[str, Any],
    objective: str | Callable[..., Any] | None = None,
    *,
    command: str | None = None,
    kill_after: float | None = None,
    experiment: str | None = None,
    driver: str = "optuna",
    study: str | None = None,
    runs: str | Path = "runs",
    trials: int | None = None,
    timeout: float | str | None = None,
    max_steps: int | None = None,
    max_steps_total: int | None = None,
    parallel: int = 1,
    gpus_per_trial: int | None = None,
    seed: int | None = None,
    storage: str | None = None,
    address: str | None = None,
    enqueue: str | Path | Sequence[Mapping[str, Any]] | None = None,
    overrides: Overrides = (),
    resume: bool = False,
    quiet: bool = False,
    track: bool = True,
    tracking_uri: str | None = None,
    system_metrics: bool = True,
    tracking_timeout: float | None = None,
) -> SearchResult:
    """Run a search, as `hpo search` does; the arguments are SearchOptions' fields.

    Returns the SearchResult. Raises a UserInputError subclass (hpo.errors) for bad input,
    before any trial or folder; SearchFailed when every trial failed; KeyboardInterrupt after
    a Ctrl-C stopped the study cleanly (resume it with resume=True; see this module's doc).
    """
    options = SearchOptions(**{name: value for name, value in locals().items()})
    from hpo.quiet import silenced_for_a_call

    with silenced_for_a_call(quiet is True):  # as `hpo search --quiet`, for this call only
        result = run_search(options)
    if result.interrupted:
        raise KeyboardInterrupt(
            f"study {result.study} interrupted: {result.counts.get('interrupted', 0)} trial(s) "
            f"interrupted, {result.dir / 'summary.json'} written; continue with resume=True"
        )
    check_outcome(result)
    return result


def run_search(options: SearchOptions) -> SearchResult:
    """The search itself, for hpo.search and `hpo search`: check every input, then run the
    study and publish it to MLflow. An interrupted study is returned (stop_reason
    "interrupted"), not published; callers decide what to say."""
    from hpo.drivers import get_driver
    from hpo.study_lock import hold_study

    # the live view reports each trial; the runner's own data/model lines would repeat per trial
    logging.getLogger("runner").setLevel(logging.WARNING)
    space, objective, study = prepare_search(options)
    # One driver per study: a second search of it is refused here, at once (before MLflow).
    # A study that does not start (e.g. an unreachable server) leaves no folder behind.
    with hold_study(study, options.driver):
        tracker = None
        if options.track:
            from hpo.tracking import MlflowTracker

            tracker = MlflowTracker(
                options.tracking_uri,
                system_metrics=options.system_metrics,
                close_timeout=options.tracking_timeout,
            )
            tracker.connect()  # an unreachable server stops here, before any trial
        result = get_driver(options.driver).run(space, study, objective, tracker)
        if result.stop_reason != "interrupted" and tracker is not None:
            tracker.publish(result.dir)  # or, when MLflow missed records, `hpo sync` publishes
    return SearchResult.from_study(result)


# ----------------------------------------------------------------------------- train


def train(
    config: str | Path | Mapping[str, Any] = DEFAULT_EXPERIMENT,
    overrides: Overrides = (),
    *,
    output: str | Path | None = None,
    resume: bool = False,
    quiet: bool = False,
) -> TrialResult:
    """Train one trial, as `hpo train` does; returns its runner.result.TrialResult
    (status, best_metrics, final_metrics, best_checkpoint, ...).

    config: an experiment file (relative paths in it are relative to it) or the config as a
    nested dict (its paths relative to the current folder). overrides: {dotted key: value} or
    "key=value" strings (-o). output: the trial folder (--output; default the config's
    output_dir). resume: continue from OUTPUT/checkpoints/last.pt. With train.nproc > 1 it
    trains on that many processes under torchrun, as `hpo train --nproc N`.
    Raises a UserInputError subclass (hpo.errors) for bad input, before any folder is created,
    and KeyboardInterrupt after a Ctrl-C ended the trial at a step with checkpoints/last.pt
    saved (resume=True continues it).
    """
    for name, value in (("resume", resume), ("quiet", quiet)):
        if not isinstance(value, bool):
            raise UsageError(f"{name}: expected True or False, got {value!r}")
    strings = override_strings(overrides)
    if output is not None:
        strings.append(f"output_dir={yaml_scalar(str(output))}")
    trial_config = load_train_config(config, strings)
    source = str(config) if isinstance(config, str | Path) else "<config>"
    from hpo.validation import check_train

    check_train(trial_config, source)  # the data, before the trial folder is created
    from hpo.quiet import silenced_for_a_call

    with silenced_for_a_call(quiet):
        result = run_train(trial_config, resume=resume, quiet=quiet)
    if result.status == "interrupted":  # as hpo.search: the cell stops, the trial resumes
        raise KeyboardInterrupt(
            f"trial interrupted at step {result.steps}: {result.last_checkpoint} saved; "
            "continue with resume=True"
        )
    return result


def load_train_config(
    config: str | Path | Mapping[str, Any], overrides: Sequence[str]
) -> TrialConfig:
    """The validated TrialConfig of an experiment file or dict plus "key=value" overrides."""
    from runner.config import config_from_dict, load_config, merge_experiment

    if isinstance(config, str | Path):
        return load_config(config, list(overrides))
    if not isinstance(config, Mapping):
        raise UsageError(
            f"config: expected an experiment file's path or a dict, got {type(config).__name__}"
        )
    merged = merge_experiment(dict(config), Path.cwd(), overrides, "<config>")
    return config_from_dict(merged, source="<config>")


def run_train(config: TrialConfig, *, resume: bool = False, quiet: bool = False) -> TrialResult:
    """Train one checked config: in this process, or, with train.nproc > 1 outside torchrun,
    on that many processes under torchrun (rank 0 reporting here). Under torchrun (`hpo train
    --nproc N` starts `hpo train` once per rank) each rank trains its share."""
    from hpo import launch
    from runner import run_trial

    progress = _progress(config, quiet or not launch.is_main_rank())
    if config.train.nproc > 1 and not launch.under_torchrun():
        result = launch.run_distributed_trial(config, progress, resume=resume)
    else:
        result = run_trial(config, progress, resume=resume)
    close = getattr(progress, "close", None)
    if close is not None:
        close()
    return result


def _progress(config: TrialConfig, quiet: bool) -> Any:
    if quiet:
        from runner import NullReporter

        return NullReporter()
    from hpo.progress import ProgressBar

    return ProgressBar(config.train.max_steps)


__all__ = [
    "SearchFailed",
    "SearchOptions",
    "SearchResult",
    "UserInputError",
    "check_outcome",
    "load_train_config",
    "override_strings",
    "prepare_search",
    "run_search",
    "run_train",
    "search",
    "train",
]
