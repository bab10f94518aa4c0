"""The params of the DVC pipeline's stages (params.yaml), each checked before a stage runs, and
the stage's hpo command line built from them as arguments, never through a shell (hpo
pipeline STAGE, hpo.pipeline_commands).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The pipeline's fixed paths: dvc.yaml's deps and outs name the same ones.
PREPARED = "data/prepared"
BEST_MODEL = "models/best"


@dataclass(frozen=True)
class Param:
    """One key of params.yaml: what kind of value it holds, checked before the stage runs."""

    check: Callable[[Any], str | None]  # the value -> None, or what is wrong with it
    doc: str


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"expected a path, got {_show(value)}"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"a path without control characters, got {_show(value)}"
    return None


def _integer(low: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            return f"expected an integer >= {low}, got {_show(value)}"
        return None

    return check


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, got {_show(value)}"


def _study(value: Any) -> str | None:
    from hpo.terminal import check_study_name

    problem = check_study_name(value) if isinstance(value, str) else "expected a study name"
    return f"{problem}, got {_show(value)}" if problem else None


def _driver(value: Any) -> str | None:
    from hpo.drivers import DRIVERS

    if value not in DRIVERS:
        return f"expected one of {', '.join(DRIVERS)}, got {_show(value)}"
    return None


def _show(value: Any) -> str:
    from runner.yaml_io import excerpt

    return excerpt(value, 60)


PARAMS: dict[str, dict[str, Param]] = {
    "prepare": {"experiment": Param(_text, "experiment YAML the pipeline trains")},
    "search": {
        "space": Param(_text, "search space YAML"),
        "driver": Param(_driver, "optuna, ray, bo or random"),
        "study": Param(_study, "study name: runs/STUDY holds it"),
        "trials": Param(_integer(1), "trials to complete"),
        "max_steps": Param(_integer(1), "training steps per trial"),
        "seed": Param(_integer(0), "seed of the search"),
        "track": Param(_boolean, "log the study to MLflow (optional, default true)"),
    },
    "train": {"max_steps": Param(_integer(1), "training steps of the final model")},
}
OPTIONAL = {"search.track": True}
STAGES: dict[str, tuple[str, ...]] = {  # stage -> the params it reads
    "prepare": ("prepare.experiment",),
    "search": (
        "prepare.experiment",
        "search.space",
        "search.driver",
        "search.study",
        "search.trials",
        "search.max_steps",
        "search.seed",
        "search.track",
    ),
    "train": ("search.study", "train.max_steps"),
}


def read_params(path: str | Path, stage: str) -> dict[str, Any]:
    """The values `stage` reads from params.yaml, each checked; a ConfigError
    `FILE:LINE: what is wrong (KEY)` for the first wrong, missing or unknown one."""
    from runner.errors import ConfigError
    from runner.yaml_io import load_yaml_file_with_lines

    raw, lines = load_yaml_file_with_lines(path, "params file")

    def fail(key: str, problem: str) -> ConfigError:
        line = lines.get(key) or lines.get(key.split(".")[0])
        return ConfigError(f"{path}{f':{line}' if line else ''}: {problem} ({key})")

    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with sections prepare, search, train")
    for section in {key.split(".")[0] for key in STAGES[stage]}:
        values = raw.get(section)
        if not isinstance(values, dict):
            raise fail(section, "missing, or not a mapping of the stage's params")
        for key in values:
            if key not in PARAMS[section]:
                known = ", ".join(PARAMS[section])
                raise fail(f"{section}.{key}", f"unknown param; {section} has {known}")
    params = {}
    for key in STAGES[stage]:
        section, name = key.split(".")
        if name not in raw[section]:
            if key in OPTIONAL:
                params[key] = OPTIONAL[key]
                continue
            raise fail(key, f"missing: {PARAMS[section][name].doc}")
        value = raw[section][name]
        problem = PARAMS[section][name].check(value)
        if problem:
            raise fail(key, problem)
        params[key] = value
    return params


def stage_command(stage: str, params: dict[str, Any]) -> list[str]:
    """The hpo command line (an argument list: no shell) that runs `stage` with `params`.

    Values are given as --flag=VALUE so that none can be read as a flag of its own.
    """
    cache = f"data.cache_dir={PREPARED}"
    if stage == "prepare":
        return [
            "prepare",
            f"--config={params['prepare.experiment']}",
            "-o",
            cache,
            f"--stats={PREPARED}/stats.json",
        ]
    if stage == "search":
        return [
            "search",
            f"--space={params['search.space']}",
            f"--experiment={params['prepare.experiment']}",
            f"--driver={params['search.driver']}",
            f"--study={params['search.study']}",
            f"--trials={params['search.trials']}",
            f"--max-steps={params['search.max_steps']}",
            f"--seed={params['search.seed']}",
            "-o",
            cache,
            # a search killed midway (dvc.lock is then left as it was) is finished by the next
            # `dvc repro` instead of started again; a larger search.trials adds trials to it
            "--resume",
            "--quiet",
            *([] if params["search.track"] else ["--no-track"]),
        ]
    return [
        "train",
        f"--config=runs/{params['search.study']}/best/config.yaml",
        "-o",
        f"train.max_steps={params['train.max_steps']}",
        "-o",
        cache,
        f"--output={BEST_MODEL}",
        "--quiet",
    ]
