"""When a trial stops, and why: one pure decision over what the training loop knows.

The loop learns its inputs in order, and asks decide_stop again after each: before the first
step; after a step's update (its non-finite streak); after an evaluation (early stopping);
after asking the reporter; and after the ranks exchange their interrupt and write-failure flags,
which ends the step. Inputs not learnt yet keep their defaults, which never stop the trial, and
the budget counts only once the step has ended, so a reporter may still prune at the last step.
The loop asks the reporter only when early stopping did not fire: hpo's parallel executor takes
a True from should_stop() as the trial's prune, so it must not be asked needlessly.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.outcome import EndState

RANK_0_WRITE_FAILED = "rank 0 could not write the trial's files"


@dataclass(frozen=True)
class Stop:
    """The trial ends: its TrialResult status, and the reason (None: it ran its budget)."""

    status: EndState
    reason: str | None


@dataclass(frozen=True)
class StopSignals:
    """What the loop knows at one point of a step (see the module's docstring for the order)."""

    step: int  # optimizer steps taken so far
    max_steps: int
    # after the update: consecutive non-finite steps, and this step's loss and gradient norm
    nonfinite_streak: int = 0
    max_nonfinite_steps: int = 1
    loss: float = 0.0
    grad_norm: float = 0.0
    # after an evaluation at this step
    evaluated: bool = False
    evals_without_improvement: int = 0
    early_stopping_patience: int = 0  # 0: off
    metric: str = "val_loss"
    # the reporter's should_stop(), asked after an evaluation that did not stop early
    reporter_says_stop: bool = False
    # the ranks' flags, exchanged at the end of each step (and once before the first)
    end_of_step: bool = False
    write_failed: bool = False  # some rank (rank 0: the only one that writes) failed a write
    interrupted: bool = False
    interrupt_name: str = "Ctrl-C"  # or SIGTERM: the signal that interrupted


def decide_stop(s: StopSignals) -> Stop | None:
    """The trial's end and its reason, or None to train on. First match wins, in this order:
    non-finite steps, early stopping, the reporter, a failed write, an interrupt, the budget."""
    if s.nonfinite_streak >= s.max_nonfinite_steps:
        return Stop(
            "failed",
            f"{s.nonfinite_streak} consecutive non-finite steps "
            f"(loss {s.loss}, grad norm {s.grad_norm}) at step {s.step}",
        )
    if (
        s.evaluated
        and s.early_stopping_patience
        and s.evals_without_improvement >= s.early_stopping_patience
    ):
        return Stop(
            "complete",
            f"early stopping: no improvement of {s.metric} in "
            f"{s.evals_without_improvement} evaluations",
        )
    if s.reporter_says_stop:
        return Stop("pruned", f"stopped by the reporter at step {s.step}")
    if s.write_failed:  # run_trial names the file instead when this rank's write failed
        return Stop("failed", RANK_0_WRITE_FAILED)
    if s.interrupted:
        return Stop(
            "interrupted",
            f"interrupted ({s.interrupt_name}) at step {s.step}; resume with --resume",
        )
    if s.end_of_step and s.step >= s.max_steps:
        return Stop("complete", None)
    return None
