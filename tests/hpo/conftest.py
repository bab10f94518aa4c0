"""Fixtures for the search side: spaces built from dicts and searches run in tmp_path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from postgres import postgres_url  # noqa: F401 (a fixture for the PostgreSQL tests)

from hpo.drivers import get_driver
from hpo.drivers.base import StudySpec
from hpo.space import SearchSpace, space_from_dict
from hpo.study import StudyResult

# The cheap objective of the driver tests: f = (log10(lr) + 3)^2 + (y - 0.3)^2, minimum 0 at
# lr = 1e-3, y = 0.3.
BOWL_PARAMS = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "y": {"type": "float", "low": 0.0, "high": 1.0},
}


@pytest.fixture
def make_space() -> Callable[..., SearchSpace]:
    """make_space(driver, params=BOWL_PARAMS, trials=8, timeout=None, objective=..., **options)."""

    def make(
        driver: str,
        params: dict | None = None,
        trials: int | None = 8,
        timeout: float | None = None,
        objective: Any = "val_loss",
        **options: Any,
    ) -> SearchSpace:
        raw = {
            "objective": objective,
            "budget": {"trials": trials, "timeout": timeout},
            "driver": {"seed": 0, **options},
            "params": params or BOWL_PARAMS,
        }
        return space_from_dict(raw, source="test_space.yaml", driver=driver)

    return make


@pytest.fixture
def run_search(tmp_path: Path) -> Callable[..., StudyResult]:
    """run_search(space, objective, name="s", **StudySpec fields): the study in tmp_path/runs."""

    def run(
        space: SearchSpace, objective: Callable, name: str = "s", tracker: Any = None, **fields: Any
    ) -> StudyResult:
        fields.setdefault("quiet", True)
        study = StudySpec.for_space(space, name=name, runs=tmp_path / "runs", **fields)
        return get_driver(space.driver).run(space, study, objective, tracker)

    return run
