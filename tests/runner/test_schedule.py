import itertools
import math

import pytest

from runner.config import TrainConfig
from runner.schedule import lr_at, warmup_steps


def cfg(**kw) -> TrainConfig:
    base = dict(max_steps=100, learning_rate=1.0, min_lr_ratio=0.1, warmup_steps=10)
    return TrainConfig(**{**base, **kw})


def test_warmup_rises_linearly_to_the_peak_and_never_starts_at_zero():
    c = cfg()
    assert [lr_at(s, c) for s in range(10)] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert lr_at(0, c) > 0


def test_cosine_decays_from_peak_to_floor_at_the_last_step():
    c = cfg(lr_scheduler_type="cosine")
    assert lr_at(10, c) == pytest.approx(1.0)
    assert lr_at(99, c) == pytest.approx(0.1)
    midpoint = 10 + (99 - 10) / 2
    assert lr_at(int(midpoint), c) == pytest.approx(0.55, abs=0.02)
    values = [lr_at(s, c) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_linear_decay_is_a_straight_line_to_the_floor():
    c = cfg(lr_scheduler_type="linear")
    assert lr_at(10, c) == pytest.approx(1.0)
    assert lr_at(99, c) == pytest.approx(0.1)
    assert lr_at(10 + 89 // 2, c) == pytest.approx(1.0 - 0.9 * (44 / 89))


def test_constant_stays_at_the_peak_after_warmup():
    c = cfg(lr_scheduler_type="constant")
    assert {lr_at(s, c) for s in range(10, 100)} == {1.0}


def test_warmup_ratio_is_a_fraction_of_max_steps_and_warmup_steps_wins():
    assert warmup_steps(cfg(warmup_steps=0, warmup_ratio=0.25)) == 25
    assert warmup_steps(cfg(warmup_steps=7, warmup_ratio=0.25)) == 7


def test_no_warmup_starts_at_the_peak():
    c = cfg(warmup_steps=0)
    assert lr_at(0, c) == pytest.approx(1.0)
    assert math.isfinite(lr_at(99, c))


def test_schedule_is_a_pure_function_of_the_step():
    c = cfg()
    assert [lr_at(s, c) for s in (50, 3, 50)] == [lr_at(50, c), lr_at(3, c), lr_at(50, c)]


def closed_form(step: int, c: TrainConfig) -> float:
    """The schedule as this project defines it, written out (runner.schedule builds it from
    transformers.get_scheduler): warmup (step+1)/warmup, then a decay that reaches the floor
    at the last step."""
    peak, warmup = c.learning_rate, warmup_steps(c)
    if step < warmup:
        return peak * (step + 1) / warmup
    floor = peak * c.min_lr_ratio
    if c.lr_scheduler_type == "constant":
        return peak
    progress = min(1.0, (step - warmup) / max(1, c.max_steps - warmup - 1))
    if c.lr_scheduler_type == "linear":
        return peak - (peak - floor) * progress
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def test_the_schedule_from_transformers_matches_the_closed_form_at_every_step():
    for kind, max_steps, warmup, ratio in itertools.product(
        ["cosine", "linear", "constant"], [1, 2, 3, 7, 50], [0, 1, 2, 6, 7, 60], [0.0, 0.1, 1.0]
    ):
        c = TrainConfig(
            max_steps=max_steps,
            learning_rate=3e-4,
            min_lr_ratio=ratio,
            warmup_steps=warmup,
            lr_scheduler_type=kind,
        )
        steps = range(max_steps + 2)  # past the end too: the floor
        assert [lr_at(s, c) for s in steps] == pytest.approx(
            [closed_form(s, c) for s in steps], rel=1e-12, abs=1e-18
        ), (kind, max_steps, warmup, ratio)
