"""The stop decision on its own (runner.stopping): plain values in, a status and reason out."""

from __future__ import annotations

import pytest

from runner.stopping import RANK_0_WRITE_FAILED, Stop, StopSignals, decide_stop


def signals(**known) -> StopSignals:
    return StopSignals(**{"step": 7, "max_steps": 20, **known})


def test_a_step_with_nothing_to_stop_it_trains_on():
    assert decide_stop(signals()) is None
    assert decide_stop(signals(end_of_step=True)) is None
    assert decide_stop(signals(evaluated=True, evals_without_improvement=9)) is None  # patience off


def test_the_budget_ends_the_trial_only_once_the_step_has_ended():
    assert decide_stop(signals(step=20, end_of_step=True)) == Stop("complete", None)
    assert decide_stop(signals(step=21, end_of_step=True)) == Stop("complete", None)
    # after the last step's evaluation the reporter may still prune it
    assert decide_stop(signals(step=20, evaluated=True)) is None
    assert decide_stop(signals(step=20, reporter_says_stop=True)).status == "pruned"


def test_consecutive_non_finite_steps_fail_with_the_numbers():
    stop = decide_stop(
        signals(nonfinite_streak=3, max_nonfinite_steps=3, loss=float("nan"), grad_norm=2.5)
    )
    assert stop == Stop(
        "failed", "3 consecutive non-finite steps (loss nan, grad norm 2.5) at step 7"
    )
    assert decide_stop(signals(nonfinite_streak=2, max_nonfinite_steps=3)) is None


def test_early_stopping_completes_after_patience_evaluations_without_improvement():
    known = {"evaluated": True, "early_stopping_patience": 2, "metric": "val_accuracy"}
    assert decide_stop(signals(**known, evals_without_improvement=1)) is None
    assert decide_stop(signals(**known, evals_without_improvement=2)) == Stop(
        "complete", "early stopping: no improvement of val_accuracy in 2 evaluations"
    )
    # patience counts only when there was an evaluation at this step
    assert (
        decide_stop(signals(**{**known, "evaluated": False}, evals_without_improvement=2)) is None
    )


def test_the_reporter_prunes():
    assert decide_stop(signals(reporter_says_stop=True)) == Stop(
        "pruned", "stopped by the reporter at step 7"
    )


@pytest.mark.parametrize("name", ["Ctrl-C", "SIGTERM"])
def test_an_interrupt_ends_the_trial_resumable(name):
    stop = decide_stop(signals(end_of_step=True, interrupted=True, interrupt_name=name))
    assert stop == Stop("interrupted", f"interrupted ({name}) at step 7; resume with --resume")


def test_a_failed_write_fails_the_trial():
    assert decide_stop(signals(end_of_step=True, write_failed=True)) == Stop(
        "failed", RANK_0_WRITE_FAILED
    )


def test_the_first_reason_wins_in_the_documented_order():
    everything = {
        "step": 20,
        "end_of_step": True,
        "nonfinite_streak": 1,
        "max_nonfinite_steps": 1,
        "evaluated": True,
        "early_stopping_patience": 1,
        "evals_without_improvement": 1,
        "reporter_says_stop": True,
        "write_failed": True,
        "interrupted": True,
    }
    order = ["failed", "complete", "pruned", "failed", "interrupted", "complete"]
    cleared = [
        ("nonfinite_streak", 0),
        ("evaluated", False),
        ("reporter_says_stop", False),
        ("write_failed", False),
        ("interrupted", False),
    ]
    seen = [decide_stop(signals(**everything)).status]
    for key, value in cleared:
        everything[key] = value
        seen.append(decide_stop(signals(**everything)).status)
    assert seen == order
    assert decide_stop(signals(**everything)).reason is None  # the budget: no reason
