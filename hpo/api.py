"""hpo's Python API: hpo.search and hpo.train, for notebooks and scripts.

The `hpo search` and `hpo train` commands build the same options and call the same functions
(run_search, load_train_config, run_train), so the command and the API cannot drift: the same
checks, in the same order, raising the same typed exceptions (hpo.errors), which the command
prints as `hpo: error: ...` lines.

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

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.errors import SearchFailed
from runner.errors import UsageError, UserInputError

if TYPE_CHECKING:
    import pandas

    from hpo.drivers.base import StudySpec, TrialRecord
    from hpo.space import Objective, SearchSpace
    from hpo.study import StudyResult
    from runner.config import TrialConfig
    from runner.result import TrialResult

DEFAULT_EXPERIMENT = "experiments/lm_tiny.yaml"

Overrides = Sequence[str] | Mapping[str, Any]


# ----------------------------------------------------------------------------- search


@dataclass(frozen=True)
class SearchOptions:
    """Everything a search is given: hpo.search's arguments, `hpo search`'s flags.

    space: a space file (hpo's, a W&B sweep or a Ray Tune-style YAML) or the space as a dict.
    objective: what a trial runs: None for the runner on the space's experiment, a function
        (params, reporter) -> value, or "module:function" (--objective).
    command: a shell command run as each trial (--command; see hpo.command_trial), in place of
        the space's own `command:`; kill_after: seconds a pruned or interrupted command gets
        between SIGTERM and SIGKILL (--kill-after).
    overrides: experiment config keys set for every trial: "key=value" strings (-o) or a dict.
    enqueue: params run first: an --enqueue YAML file, or a list of {param: value} dicts.
    quiet: as --quiet: no live view, and for the call no third-party warnings or log records
        below ERROR; the caller's loggers and warning filters are put back when it returns.
    Every other field is the flag of the same name (`hpo search --help`); track=False is
    --no-track, system_metrics=False --no-system-metrics.
    """

    space: str | Path | Mapping[str, Any]
    objective: str | Callable[..., Any] | None = None
    command: str | None = None
    kill_after: float | None = None
    experiment: str | None = None
    driver: str = "optuna"
    study: str | None = None
    runs: str | Path = "runs"
    trials: int | None = None
    timeout: float | str | None = None
    max_steps: int | None = None
    max_steps_total: int | None = None
    parallel: int = 1
    gpus_per_trial: int | None = None
    seed: int | None = None
    storage: str | None = None
    address: str | None = None
    enqueue: str | Path | Sequence[Mapping[str, Any]] | None = None
    overrides: Overrides = ()
    resume: bool = False
    quiet: bool = False
    track: bool = True
    tracking_uri: str | None = None
    system_metrics: bool = True
    tracking_timeout: float | None = None


@dataclass(frozen=True)
class SearchResult:
    """What a search found: every trial of the study (earlier runs included) and the best.

    The values are those of the study's files, which `hpo best` and `hpo status --json` read.
    """

    study: str
    dir: Path  # runs/<study>
    driver: str
    objectives: tuple[Objective, ...]
    trials: list[TrialRecord]  # by number; each: number, params, state, value(s), reason, ...
    best_trial: TrialRecord | None  # the complete trial best on the (first) objective
    stop_reason: str  # budget | timeout | exhausted | failures | interrupted | storage
    wall_seconds: float
    counts: dict[str, int] = field(default_factory=dict)  # trials by state

    @classmethod
    def from_study(cls, result: StudyResult) -> SearchResult:
        from hpo.records import END_STATES

        return cls(
            study=result.study,
            dir=Path(result.dir),
            driver=result.driver,
            objectives=result.objectives,
            trials=list(result.trials),
            best_trial=result.best,
            stop_reason=result.stop_reason,
            wall_seconds=result.wall_seconds,
            counts={state: result.count(state) for state in END_STATES},
        )

    @property
    def best_params(self) -> dict[str, Any] | None:
        """The best trial's params by dotted key; None when no trial completed."""
        return None if self.best_trial is None else dict(self.best_trial.params)

    @property
    def best_value(self) -> float | None:
        """The best trial's value of the (first) objective metric."""
        return None if self.best_trial is None else self.best_trial.value

    @property
    def best_values(self) -> list[float] | None:
        """The best trial's value of each objective, in the space's order."""
        return None if self.best_trial is None else list(self.best_trial.values or [])

    @property
    def best_checkpoint(self) -> Path | None:
        """The best trial's promoted checkpoint, runs/<study>/best/best.pt (or another best*
        entry the trial wrote under checkpoints/); None when there is none (a function objective
        that saved nothing, or no complete trial)."""
        best = self.dir / "best"
        if self.best_trial is None or not best.is_dir():
            return None
        if (best / "best.pt").exists():
            return best / "best.pt"
        return next(iter(sorted(best.glob("best*"))), None)

    def count(self, state: str) -> int:
        """Trials in `state` (complete, pruned, failed, interrupted)."""
        return self.counts.get(state, 0)

    @property
    def interrupted(self) -> bool:
        return self.stop_reason == "interrupted"

    def trials_dataframe(self) -> pandas.DataFrame:
        """The trials as a pandas DataFrame, one row each, in the columns of Optuna's
        Study.trials_dataframe(): number, value (values_0, values_1... for several objectives),
        datetime_start, datetime_complete, duration, params_<key>..., state; then steps and
        reason. state is hpo's: complete, pruned, failed, interrupted or running.
        """
        try:
            import pandas  # installed with mlflow and optuna's extras; not hpo's own dependency
        except ImportError:
            raise ImportError(
                "trials_dataframe() needs pandas (pip install pandas); result.trials holds the "
                "same records"
            ) from None

        rows = []
        keys = list(dict.fromkeys(k for t in self.trials for k in t.params))
        for t in self.trials:
            row: dict[str, Any] = {"number": t.number}
            if len(self.objectives) == 1:
                row["value"] = t.value
            else:
                for i in range(len(self.objectives)):
                    row[f"values_{i}"] = t.values[i] if t.values and i < len(t.values) else None
            start = pandas.Timestamp(t.started, unit="s") if t.started else pandas.NaT
            row["datetime_start"] = start
            row["datetime_complete"] = (
                start + pandas.Timedelta(seconds=t.duration)
                if t.started and t.state != "running"
                else pandas.NaT
            )
            row["duration"] = pandas.Timedelta(seconds=t.duration)
            for key in keys:
                row[f"params_{key}"] = t.params.get(key)
            row.update(state=t.state, steps=t.steps, reason=t.reason)
            rows.append(row)
        return pandas.DataFrame(rows)


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


def check_outcome(result: SearchResult) -> None:
    """SearchFailed when no trial completed or was pruned (each failed, or none ran)."""
    if result.counts.get("complete", 0) == 0 and result.counts.get("pruned", 0) == 0:
        first = next((t.reason for t in result.trials if t.state == "failed"), None)
        raise SearchFailed(f"every trial failed; the first: {first or 'no trial ran'}", result)


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


def prepare_search(options: SearchOptions) -> tuple[SearchSpace, Any, StudySpec]:
    """Every check of a search on its inputs, before anything is created: the space, the
    objective it will run and the study's spec."""
    from hpo.drivers.base import StudySpec
    from hpo.space import load_enqueue, load_space
    from hpo.validation import check_search
    from runner.config import check_key

    _check_argument_types(options)
    if options.command is not None and options.objective is not None:
        raise UsageError("give an objective or a command, not both (--objective, --command)")
    if options.parallel < 1:
        raise UsageError(f"--parallel: must be >= 1, got {options.parallel}")
    space = load_space(
        options.space,
        experiment=options.experiment,
        driver=options.driver,
        config_key_check=None if options.objective or options.command else check_key,
    )
    # the command (--command, hpo.search(command=...)) replaces the space's own command:
    # placeholders are checked with the rest by check_search
    space = space.with_command(options.command, kill_after=options.kill_after)
    space = space.with_budget(
        trials=options.trials,
        timeout=options.timeout,
        max_steps=options.max_steps,
        max_steps_total=options.max_steps_total,
    )
    if options.seed is not None:
        space = space.with_seed(options.seed)
    if options.address:
        if options.driver != "ray":
            raise UsageError("--address: only the ray driver joins a cluster (use --driver ray)")
        space = dataclasses.replace(
            space, driver_options={**space.driver_options, "address": options.address}
        )
    objective = check_search(
        space,
        objective=options.objective,
        overrides=override_strings(options.overrides),
        storage=options.storage,
        tracking_uri=options.tracking_uri,
        track=options.track,
        parallel=options.parallel,
    )
    devices: list[str | None] = []
    if options.parallel > 1:  # concurrent trials get GPUs of their own (CUDA_VISIBLE_DEVICES)
        from hpo import launch

        gpus = launch.visible_gpus()
        per_trial = options.gpus_per_trial
        if per_trial is None:
            nproc = getattr(objective, "nproc", 1)
            per_trial = launch.default_gpus_per_trial(options.parallel, nproc, gpus)
        devices = launch.devices_for_trials(options.parallel, per_trial, gpus)
    study = StudySpec.for_space(
        space,
        name=options.study,
        runs=options.runs,
        parallel=options.parallel,
        resume=options.resume,
        storage=options.storage,
        quiet=options.quiet,
        enqueue=load_enqueue(options.enqueue, space) if options.enqueue else (),
        devices=tuple(devices),
    )
    return space, objective, study


def _check_argument_types(options: SearchOptions) -> None:
    """UsageError for an argument of the wrong kind, which argparse refuses for the command."""
    for name in ("trials", "max_steps", "max_steps_total", "parallel", "gpus_per_trial", "seed"):
        value = getattr(options, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise UsageError(f"{name}: expected a whole number, got {value!r} ({name})")
    for name in ("resume", "quiet", "track", "system_metrics"):
        if not isinstance(getattr(options, name), bool):
            raise UsageError(f"{name}: expected True or False, got {getattr(options, name)!r}")
    if not isinstance(options.space, str | Path | Mapping):
        raise UsageError(
            f"space: expected a space file's path or a dict, got {type(options.space).__name__}"
        )


def override_strings(overrides: Overrides) -> list[str]:
    """ "key=value" overrides (-o) from a list of them or a {dotted key: value} dict.

    A dict's values are written as YAML that reads back as the same value (1e-5 as 1.0e-05,
    which PyYAML would otherwise read as text); a value that does not is refused.
    """
    if isinstance(overrides, str):
        raise UsageError(f"overrides: expected a dict or a list of key=value, got {overrides!r}")
    if not isinstance(overrides, Mapping):
        return [str(item) for item in overrides]
    from runner.yaml_io import load_yaml_text

    strings = []
    for key, value in overrides.items():
        text = _yaml_scalar(value)
        if text is None or load_yaml_text(text, f"overrides[{key!r}]") != value:
            raise UsageError(
                f"overrides[{key!r}]: {value!r} is not a value a config key takes (a number, "
                f"text, true/false, None or a list of them) ({key})"
            )
        strings.append(f"{key}={text}")
    return strings


def _yaml_scalar(value: Any) -> str | None:
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = repr(value)
        if "e" in text and "." not in text:  # YAML 1.1 reads 1e-05 as text, 1.0e-05 as a float
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, list | tuple):
        items = [_yaml_scalar(item) for item in value]
        return None if None in items else "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)  # JSON scalars are YAML flow scalars
    return None


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
        strings.append(f"output_dir={_yaml_scalar(str(output))}")
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
