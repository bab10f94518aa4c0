"""The params of the DVC pipeline's stages (params.yaml), each checked before a stage runs, and
the stage's hpo command line built from them as arguments, never through a shell (hpo
pipeline STAGE, hpo.pipeline_commands).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo.space.driver_options import DRIVERS
from runner.schema import SEED, Allowed, Fail, checked

# The pipeline's fixed paths: dvc.yaml's deps and outs name the same ones.
PREPARED = "data/prepared"
BEST_MODEL = "models/best"


@dataclass(frozen=True)
class Param:
    """One key of params.yaml: what it allows (runner.schema's one check), or, where that is
    more than a kind and a range (a path, a study name), a check of its own."""

    allowed: Allowed | None
    doc: str
    check: Callable[[Any], str | None] | None = None  # the value -> None, or what is wrong

    def read(self, value: Any, key: str, fail: Fail) -> Any:
        """The value as its kind (1.0 for a count is 1), or raise fail(key, what is wrong)."""
        if self.check is not None and (problem := self.check(value)):
            raise fail(key, problem)
        return value if self.allowed is None else checked(value, self.allowed, key, fail)


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"expected a path, got {_show(value)}"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return f"a path without control characters, got {_show(value)}"
    return None


def _study(value: Any) -> str | None:
    from hpo.terminal import check_study_name

    problem = check_study_name(value) if isinstance(value, str) else "expected a study name"
    return f"{problem}, got {_show(value)}" if problem else None


def _show(value: Any) -> str:
    from runner.yaml_io import excerpt

    return excerpt(value, 60)


_COUNT = Allowed(kind=int, low=1)
_DRIVER = Allowed(choices=tuple(DRIVERS))

PARAMS: dict[str, dict[str, Param]] = {
    "prepare": {"experiment": Param(None, "experiment YAML the pipeline trains", _text)},
    "search": {
        "space": Param(None, "search space YAML", _text),
        "driver": Param(_DRIVER, "optuna, ray, bo or random"),
        "study": Param(None, "study name: runs/STUDY holds it", _study),
        "trials": Param(_COUNT, "trials to complete"),
        "max_steps": Param(_COUNT, "training steps per trial"),
        "seed": Param(SEED, "seed of the search"),
        "track": Param(Allowed(kind=bool), "log the study to MLflow (optional, default true)"),
    },
    "train": {"max_steps": Param(_COUNT, "training steps of the final model")},
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
        params[key] = PARAMS[section][name].read(raw[section][name], key, fail)
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
