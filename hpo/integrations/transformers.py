"""HpoCallback: a transformers Trainer searched by `hpo search --command` (README: transformers Trainer).

    from hpo.integrations.transformers import HpoCallback

    args = TrainingArguments(..., eval_strategy="steps", eval_steps=50, save_strategy="steps",
                             save_steps=50, load_best_model_at_end=True,
                             metric_for_best_model="accuracy")   # the space's objective metric
    trainer = Trainer(..., callbacks=[HpoCallback()])
    trainer.train()

In a command trial the callback, through hpo's reporting client (hpo.command_client):

- reports each evaluation with the names Trainer gives its metrics (eval_loss and the
  compute_metrics keys with their prefix, e.g. eval_accuracy; epoch) at step
  state.global_step. Timing figures (eval_runtime, eval_samples_per_second, ...) are left out:
  they measure the machine, not the model. The space's objective names one of these metrics,
  `objective: {metric: eval_accuracy, direction: maximize}`.
- asks hpo.should_prune() after each evaluation (which waits for the search's decision on that
  evaluation, about a millisecond: a pruned trial stops at the evaluation it was pruned at)
  and after each training step (one stat() of a file) and, once pruned, sets
  control.should_training_stop: Trainer ends training as at max_steps (it still loads the best
  model if load_best_model_at_end says so), on_train_end runs, and the script goes on to its
  end. Asking tells the search that the script stops itself, so it waits the command's
  kill_after seconds for the script to exit before it sends SIGTERM; the trial is recorded
  pruned whatever the script does next (hpo.should_prune() stays True: a script can skip its
  final work).
- names Trainer's best checkpoint (state.best_model_checkpoint, kept by Trainer when
  metric_for_best_model or load_best_model_at_end is set) with hpo.report_checkpoint after
  each save and at the end of training: when the trial completes, hpo copies that folder to the
  trial's checkpoints/best, and the best trial's is promoted to the study's best/ and
  registered with MLflow. Trainer's "best" is by metric_for_best_model: make it the space's
  objective metric, or the promoted checkpoint is not the evaluation that gave the trial its
  value. Trainer keeps that folder through save_total_limit's rotation.

Outside a command trial (HPO_REPORT_FILE not set: `python train.py` by hand) the callback does
nothing at all, not even hpo.report's warning. With several processes (torchrun) only the
world's process zero reports; every process asks should_prune (a process that sees the mark a
step later than the others is ended by the search's SIGTERM).

This module imports transformers; `import hpo` does not import it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from hpo.command_client import REPORT_FILE_ENV, report, report_checkpoint, should_prune

# Trainer's speed_metrics suffixes: how fast the machine evaluated, not how good the model is
TIMING_SUFFIXES = (
    "_runtime",
    "_samples_per_second",
    "_steps_per_second",
    "_jit_compilation_time",
    "_model_preparation_time",
)
RESERVED = ("step", "checkpoint", "stops_itself")  # names hpo.report refuses as metrics


def in_command_trial() -> bool:
    """Whether this process runs as a command trial of `hpo search` (its channel is named)."""
    return bool(os.environ.get(REPORT_FILE_ENV))


def evaluation_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The metrics of an evaluation hpo reports: Trainer's names, timing figures left out."""
    return {
        name: value
        for name, value in metrics.items()
        if not name.endswith(TIMING_SUFFIXES) and name not in RESERVED
    }


class HpoCallback(TrainerCallback):
    """Reports a Trainer's evaluations to hpo, stops training when the trial is pruned and
    names the best checkpoint; does nothing outside a command trial (see the module doc).

    pruned: True once training was stopped because the search pruned the trial.
    """

    def __init__(self) -> None:
        self.pruned = False
        self._checkpoint: str | None = None  # the last one named (each is named once)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not in_command_trial():
            return
        if metrics and state.is_world_process_zero:
            report(state.global_step, evaluation_metrics(metrics))
        self._stop_if_pruned(control)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if in_command_trial():
            self._stop_if_pruned(control)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._name_best_checkpoint(state)

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._name_best_checkpoint(state)

    def _stop_if_pruned(self, control: TrainerControl) -> None:
        if should_prune():
            self.pruned = True
            control.should_training_stop = True

    def _name_best_checkpoint(self, state: TrainerState) -> None:
        best = state.best_model_checkpoint
        if not in_command_trial() or not state.is_world_process_zero or best is None:
            return
        if best != self._checkpoint and os.path.isdir(best):
            report_checkpoint(best)
            self._checkpoint = best
