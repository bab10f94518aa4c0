"""The recipe of a study on a database: what `hpo worker` needs to run its trials, as JSON.

`hpo search --storage URL` stores it in the Optuna study (user attribute RECIPE, see storage.py)
and `hpo worker` reads it back (hpo.worker: space_from_recipe, objective_from_recipe): the
resolved space, where it came from, and the objective (the experiment and its overrides, the
module:function, or a command trial). Paths are made relative to the project root.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from hpo.drivers.base import ObjectiveFunction
from hpo.space import SearchSpace

RECIPE_VERSION = 1


def study_recipe(space: SearchSpace, objective: ObjectiveFunction) -> dict[str, Any]:
    """What `hpo worker` needs to run trials of this study, as plain JSON data."""
    raw = {**space.to_dict(), "experiment": _portable(space.experiment)}
    for param in space.params:  # to_dict leaves out fields equal to 0 or False (low: 0, value: 0)
        fields = dataclasses.asdict(param.distribution)
        raw["params"][param.name].update(
            {k: v for k, v in fields.items() if v is not None and k != "choices"}
        )
    recipe = {
        "version": RECIPE_VERSION,
        "space": raw,
        "source": _portable(space.source),
        "objective": _objective_recipe(objective),
    }
    return json.loads(json.dumps(recipe))


def _objective_recipe(objective: ObjectiveFunction) -> dict[str, Any]:
    from hpo.command_trial import CommandObjective
    from hpo.objective import RunnerObjective

    if isinstance(objective, CommandObjective):
        return {"command": {}}  # the space holds the command line, kill_after and max_steps
    if isinstance(objective, RunnerObjective):
        return {
            "runner": {
                "experiment": _portable(objective.experiment),
                "metric": objective.metric,
                "greater_is_better": objective.greater_is_better,
                "max_steps": objective.max_steps,
                "overrides": list(objective.overrides),
            }
        }
    module = getattr(objective, "__module__", None)
    name = getattr(objective, "__qualname__", "")
    if module and module != "__main__" and name.isidentifier():
        return {"function": f"{module}:{name}"}
    return {}


def _portable(path: str | None) -> str | None:
    """A path relative to the project root (the current folder) when it lies inside it."""
    if path is None or path == "<space>":
        return path
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path
