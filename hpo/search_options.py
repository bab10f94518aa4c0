"""What a search is given, and every check on it before anything is created.

SearchOptions are hpo.search's arguments and `hpo search`'s flags alike; prepare_search turns
them into the space, the objective and the study's spec, or raises the typed exception
(hpo.errors) the command prints as an `hpo: error: ...` line. override_strings turns -o
overrides given as a dict into the "key=value" strings the command line takes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import UsageError

if TYPE_CHECKING:
    from hpo.drivers.base import StudySpec
    from hpo.space import SearchSpace

Overrides = Sequence[str] | Mapping[str, Any]


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
        text = yaml_scalar(value)
        if text is None or load_yaml_text(text, f"overrides[{key!r}]") != value:
            raise UsageError(
                f"overrides[{key!r}]: {value!r} is not a value a config key takes (a number, "
                f"text, true/false, None or a list of them) ({key})"
            )
        strings.append(f"{key}={text}")
    return strings


def yaml_scalar(value: Any) -> str | None:
    """`value` as a YAML scalar or flow list that reads back as it; None when none does."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = repr(value)
        if "e" in text and "." not in text:  # YAML 1.1 reads 1e-05 as text, 1.0e-05 as a float
            mantissa, exponent = text.split("e")
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, list | tuple):
        items = [yaml_scalar(item) for item in value]
        return None if None in items else "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)  # JSON scalars are YAML flow scalars
    return None
