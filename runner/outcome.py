"""One vocabulary for how a trial goes and ends, shared by the runner and the search side.

- TrialState: the words of result.json's status, trial.json's state, summary.json's counts,
  the MLflow tag hpo.state and `hpo status`. A trial is `running` until it ends `complete` (it
  ran its budget, or early stopping ended it), `pruned` (a pruner or scheduler stopped it),
  `failed` (the reason says why) or `interrupted` (Ctrl-C or SIGTERM; `--resume` continues it).
- Decision: what a pruner or scheduler adapter answers after a report: stop or go on, and why.
- Outcome: what running an objective once ended with, before the search side turns it into a
  TrialRecord (hpo.records).

Here, in runner/, because runner imports nothing from hpo and both sides must use one word for
one state; hpo.records re-exports it.

Example:
    >>> read_state("completed")  # result.json written before the vocabulary was one
    'complete'
    >>> pruned_at(40)
    Decision(stop=True, reason='pruned at step 40')
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

TrialState = Literal["running", "complete", "pruned", "failed", "interrupted"]
EndState = Literal["complete", "pruned", "failed", "interrupted"]  # a trial that has ended
END_STATES: tuple[EndState, ...] = typing.get_args(EndState)
FINISHED_STATES = ("complete", "pruned")  # what counts toward budget.trials, as in Optuna
# older versions wrote result.json's status "completed": --resume, `hpo evaluate` and MLflow
# logging still read such folders
_OLD_WORDS = {"completed": "complete"}


def read_state(word: str) -> str:
    """The state a status word of a file names, an older version's word included."""
    return _OLD_WORDS.get(word, word)


@dataclass(frozen=True)
class Decision:
    """A pruner's or scheduler's answer after a report: stop the trial (why), or go on."""

    stop: bool
    reason: str | None = None  # set when stop: what trial.json's reason says


CONTINUE = Decision(stop=False)


def pruned_at(step: int) -> Decision:
    """A pruner's stop after the report of `step`, in the words trial.json's reason uses."""
    return Decision(stop=True, reason=f"pruned at step {step}")


@dataclass(frozen=True)
class Outcome:
    """How one call of an objective ended (hpo.objective_call.run_objective); picklable.

    result: complete only: what the objective returned, a number or {metric: number}.
    traceback: failed by an exception: its formatted traceback, for the trial's folder.
    """

    state: EndState
    result: Any = None
    reason: str | None = None
    traceback: str | None = None
