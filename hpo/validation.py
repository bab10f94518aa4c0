"""One validation pass before any work: `hpo search`, `hpo train` and `hpo worker` call it
before they create a folder, a database or a run, and so can Python code.

What it checks, each problem a UserInputError "FILE: what is wrong (KEY)":
- the space against the runner's own config schema (runner.config.validate, through the
  trial's own RunnerObjective.config_for): both ends of every numeric range, every choice,
  every fixed value, the corners of the space and a few seeded samples, each a point a trial
  could run with;
- the metrics to optimise are ones the experiment's task reports (runner.config.reported_metrics);
- the data each checked config reads (runner.data.check.check_data): exists, readable, text;
- the objective function (hpo.objective.load_function), or a command's placeholders
  (hpo.command_template);
- the optuna storage URL (--storage) and the MLflow tracking URI (--tracking-uri or
  $MLFLOW_TRACKING_URI) by scheme, and a SQLite file's folder (or, to join a study, the file):
  hpo.store_urls.

Example:
    >>> space = load_space("experiments/spaces/lr_wd.yaml", config_key_check=check_key)
    >>> check_search(space, tracking_uri=None)          # raises, or returns the checked objective
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.space import Categorical, Fixed, Float, Int, SearchSpace, SpaceError, with_line
from hpo.store_urls import check_storage_url, check_tracking_uri
from runner.errors import ConfigError, UserInputError
from runner.yaml_io import excerpt

MAX_CORNERS = 256  # corner points of the space checked (the product of every param's ends)
SAMPLES = 32  # seeded random points checked besides the ends and corners


def check_search(
    space: SearchSpace,
    *,
    objective: Any = None,
    overrides: Sequence[str] = (),
    storage: str | None = None,
    tracking_uri: str | None = None,
    track: bool = True,
    parallel: int = 1,
) -> Any:
    """Every check of `hpo search` on its inputs; returns the objective it will run.

    objective: --objective MODULE:FUNCTION, a function (hpo.search(objective=f)), or None for
    the runner on space.experiment. parallel: trials at once (> 1: a function must pickle).
    """
    check_storage_url(storage, "--storage", must_exist=False)
    if storage is not None and space.driver != "optuna":
        raise UserInputError(
            f"--storage: only the optuna driver keeps a study in a database; the "
            f"{space.driver} driver would ignore it (use --driver optuna) (storage)"
        )
    if track:
        check_tracking_uri(tracking_uri)
    if space.command is not None:
        if objective is not None:
            raise UserInputError(
                "--objective: a search runs a command or an objective function, not both (command)"
            )
        if overrides:
            raise UserInputError(
                "-o sets the runner's config keys; a command trial has none: put the value in "
                "the command line (command)"
            )
        return check_command(space)
    if callable(objective):
        from hpo.objective import check_function

        return check_function(objective, in_workers=parallel > 1)
    if objective is not None:
        from hpo.objective import load_function

        return load_function(objective)
    from hpo.objective import RunnerObjective

    if space.experiment is None:
        raise SpaceError(f"{space.source}: no experiment to search; set it or pass --experiment")
    runner = RunnerObjective(
        space.experiment,
        metric=space.objective.metric,
        greater_is_better=space.objective.direction == "maximize",
        max_steps=space.budget.max_steps,
        overrides=overrides,
    )
    check_space_against_runner(space, runner)
    return runner


def check_command(space: SearchSpace) -> Any:
    """The CommandObjective of a space with a command, its placeholders checked: SpaceError
    "FILE:LINE: what is wrong (command)" (or "--command: ..." for the CLI's)."""
    from hpo.command_template import TemplateError, check_template
    from hpo.command_trial import CommandObjective

    command = space.command
    try:
        check_template(command.template, [p.name for p in space.params], space.budget.max_steps)
    except TemplateError as err:
        if command.source == "--command":
            raise SpaceError(f"--command: {err}") from None
        error = SpaceError(f"{command.source}: {err} (command)")
        raise (
            with_line(error, command.source) if Path(command.source).is_file() else error
        ) from None
    return CommandObjective(command, space.objectives, space.budget.max_steps)


def check_worker(storage: str, tracking_uri: str | None, track: bool) -> None:
    """What `hpo worker` checks before it opens the study's database."""
    check_storage_url(storage, "--storage", must_exist=True)
    if track:
        check_tracking_uri(tracking_uri)


def check_train(config: Any, source: str) -> None:
    """What `hpo train` checks once load_config has validated the values: the data and
    whether this machine has the device and precision the config asks for."""
    from runner.data.check import check_data

    check_data(config, source)
    check_machine(config, source)


def check_machine(config: Any, source: str) -> None:
    """ConfigError "SOURCE: what (KEY)" when this machine lacks the config's device (cuda,
    cuda:N), its precision (fp16 needs CUDA, bf16 a GPU that has it), or when model.pretrained
    is not a folder save_pretrained wrote."""
    import torch

    from runner.precision import resolve_device, resolve_precision

    try:
        device = resolve_device(config.train)
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ConfigError(
                f"train.device: {config.train.device} asked for but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
        resolve_precision(config.train, device)
        if config.model.pretrained is not None:
            from runner.model import check_pretrained_dir

            check_pretrained_dir(config)
    except ConfigError as err:  # the runner's "KEY: what" as "SOURCE: what (KEY)"
        key, _, problem = str(err).partition(": ")
        raise ConfigError(f"{source}: {problem} ({key})") from None


# ----------------------------------------------------------------------------- the space


def check_space_against_runner(space: SearchSpace, runner: Any) -> None:
    """SpaceError "SPACE:LINE: what (KEY)" naming the param and the bad end when a point of the
    space is refused by the runner's config schema, or its data is unusable; also checks every
    objective's metric."""
    try:
        _check_space_against_runner(space, runner)
    except SpaceError as err:
        raise with_line(err, space.source) if Path(space.source).is_file() else err from None


def _check_space_against_runner(space: SearchSpace, runner: Any) -> None:
    from runner.config import load_config, reported_metrics
    from runner.data.check import check_data

    experiment = load_config(runner.experiment, runner.overrides)
    task, measured = experiment.task, reported_metrics(experiment)  # multitask: per task too
    for objective in space.objectives:
        if objective.metric not in measured:
            raise SpaceError(
                f"{space.source}: {excerpt(objective.metric)} is not a metric the {task} "
                f"experiment {runner.experiment} reports; choose one of "
                f"{', '.join(measured)} (objective.metric)"
            )
    checked_data: set[tuple[Any, ...]] = set()
    for point, what, key in points_to_check(space):
        try:
            config = runner.config_for(point, output_dir="runs/check")
        except ConfigError as err:
            raise _refused(space, runner, point, what, key, str(err)) from None
        data = (config.task, config.data.path, config.model.pretrained, config.train.device)
        data += (config.train.precision,)
        if data not in checked_data:
            checked_data.add(data)
            searched = {p.name for p in space.params}
            from_space = searched & {
                "data.path",
                "model.pretrained",
                "train.device",
                "train.precision",
            }
            source = space.source if from_space else runner.experiment
            check_data(config, source)
            check_machine(config, source)


def points_to_check(space: SearchSpace) -> Iterator[tuple[dict[str, Any], str, str | None]]:
    """(params, description, the param whose end it tests) of the points worth checking.

    First each end of each param with the others at their first end (so a refusal names one
    param and one end), then the corners (every combination of ends, up to MAX_CORNERS), then
    SAMPLES seeded random points. Each is a point a trial could run with: conditions hold.
    """
    searched = [p for p in space.params if not isinstance(p.distribution, Fixed)]
    ends = {p.name: _ends(p.distribution) for p in searched}
    base = {name: values[0][1] for name, values in ends.items()}
    yield space.trial_params(base), "the fixed values", None
    for p in searched:
        # the params p is conditioned on take a value that makes it active
        active = {**base, **{parent: allowed[0] for parent, allowed in p.condition}}
        for label, value in ends[p.name]:
            point = space.trial_params({**active, p.name: value})
            if p.name in point:
                yield point, f"{label} {excerpt(value)}", p.name
    names = [p.name for p in searched]
    for combination in itertools.islice(itertools.product(*(ends[n] for n in names)), MAX_CORNERS):
        sampled = {n: value for n, (_, value) in zip(names, combination, strict=True)}
        yield space.trial_params(sampled), "the point", None
    rng = random.Random(0)
    for _ in range(SAMPLES):
        sampled = {p.name: _draw(p.distribution, rng) for p in searched}
        yield space.trial_params(sampled), "the point", None


def sample_point(space: SearchSpace, rng: random.Random) -> dict[str, Any]:
    """One random point of the space, as a trial would run with it."""
    return space.trial_params({p.name: _draw(p.distribution, rng) for p in space.searched})


def _ends(distribution: Any) -> list[tuple[str, Any]]:
    if isinstance(distribution, Categorical):
        return [("the choice", c) for c in distribution.choices]
    count = distribution.n_values
    high = distribution.high if count is None else distribution.value_at(count - 1)
    return [("the low end", distribution.low), ("the high end", high)]


def _draw(distribution: Any, rng: random.Random) -> Any:
    if isinstance(distribution, Categorical):
        return rng.choice(distribution.choices)
    if isinstance(distribution, Float | Int):
        low, high = distribution.sample_bounds()
        return distribution.from_sample(rng.uniform(low, high))
    return distribution.value


def _refused(
    space: SearchSpace,
    runner: Any,
    point: Mapping[str, Any],
    what: str,
    key: str | None,
    message: str,
) -> SpaceError:
    """The runner's "SOURCE: problem (KEY)" as a space error naming the param and its end."""
    prefix = f"{runner.experiment}: "
    problem = message[len(prefix) :] if message.startswith(prefix) else message
    fixed = {p.name for p in space.params if isinstance(p.distribution, Fixed)}
    problem, _, named = problem.rpartition(" (")
    named = named.rstrip(")")  # the config key the runner names
    if key is None and named in fixed:
        return SpaceError(
            f"{space.source}: the fixed value {excerpt(point.get(named))} is refused by the "
            f"runner: {problem} (params.{named})"
        )
    if key is not None:
        where = "high" if "high" in what else "low" if "low" in what else "choices"
        problem = problem if named == key else f"{named} {problem}"
        return SpaceError(
            f"{space.source}: {what} is refused by the runner: {problem} (params.{key}.{where})"
        )
    if named not in point:  # the experiment (or -o) itself is refused
        return SpaceError(f"{message}")
    shown = ", ".join(f"{k}={excerpt(v, 30)}" for k, v in point.items())
    return SpaceError(
        f"{space.source}: the point {{{excerpt(shown, 200)[1:-1]}}} of the space is refused "
        f"by the runner: {named} {problem} (params)"
    )
