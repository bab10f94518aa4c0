"""One rule for which way a metric goes when nothing says: the space parser, the runner and the
tracker read runner.direction, so they cannot disagree about a metric."""

from __future__ import annotations

import pytest

from hpo.space import space_from_dict
from runner.config import config_from_dict
from runner.direction import lower_is_better


@pytest.mark.parametrize(
    ("metric", "lower"),
    [
        ("val_loss", True),
        ("eval_loss", True),
        ("val_perplexity", True),
        ("val_error_rate", True),
        ("val_accuracy", False),
        ("val_f1", False),
        ("bleu", False),
    ],
)
def test_falling_metrics_are_minimized_by_the_space_parser(metric, lower):
    assert lower_is_better(metric) is lower
    space = space_from_dict(
        {"objective": metric, "params": {"x": {"type": "float", "low": 0, "high": 1}}},
        source="s.yaml",
    )
    assert space.objectives[0].direction == ("minimize" if lower else "maximize")


@pytest.mark.parametrize("metric", ["val_loss", "val_perplexity", "val_accuracy", "val_f1"])
def test_the_runner_keeps_its_best_checkpoint_by_the_same_rule(metric):
    task = "lm" if metric in ("val_loss", "val_perplexity") else "classify"
    config = config_from_dict({"task": task, "eval": {"metric_for_best_model": metric}}, source="e")
    assert config.objective_greater_is_better is not lower_is_better(metric)
