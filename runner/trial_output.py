"""The files a trial writes, rank 0 alone: metrics.jsonl (and TensorBoard), samples.jsonl,
config.yaml and the checkpoints; the first write that fails stops every later one."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from runner.checkpoint import capture_rng_state, save_checkpoint
from runner.config import config_to_dict, report_destinations, save_config
from runner.distributed import DiscardedLog
from runner.files import StorageError, storage_error
from runner.metrics_log import MetricsLog
from runner.samples import restart_samples
from runner.schedule import lr_at
from runner.trial_setup import Trial

T = TypeVar("T")


class Writes:
    """Rank 0's file writes during a trial: the first that fails stops every later one.

    After a failed write nothing more is written (no checkpoint after a lost metrics record),
    so last.pt and the records up to its step stay consistent and `--resume` continues from it.
    """

    def __init__(self) -> None:
        self.error: StorageError | None = None

    def run(self, write: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """write(*args, **kwargs) unless an earlier write failed; None when this one fails."""
        if self.error is not None:
            return None
        try:
            return write(*args, **kwargs)
        except OSError as err:  # StorageError, or a plain OSError such as mkdir's
            self.error = storage_error(err, err.filename or "the trial's folder")
            return None


class TrialOutput:
    """Opens the trial's files: a resumed run first cuts metrics.jsonl and samples.jsonl back
    to its checkpoint's step; other ranks write nothing (their log discards its records)."""

    def __init__(self, trial: Trial) -> None:
        out, resumed_from = trial.out, trial.resumed_from
        self.writes = Writes()
        self.log: MetricsLog | DiscardedLog = DiscardedLog()
        self.board = None
        if trial.world.is_main:
            self.log = self.writes.run(MetricsLog, out / "metrics.jsonl", resumed_from) or self.log
            self.writes.run(restart_samples, out / "samples.jsonl", resumed_from)
            self.writes.run(save_config, trial.config, out / "config.yaml")
        if "data" not in self.log.kinds:  # once per trial: a resumed run keeps the first's record
            self.record("data", trial.state.step, **trial.data.stats)
        if trial.world.is_main and "tensorboard" in report_destinations(trial.train.report_to):
            from runner.tensorboard_log import TensorBoardLog

            self.board = self.writes.run(TensorBoardLog, out / "tensorboard")

    @property
    def error(self) -> StorageError | None:
        """The write that failed on this rank, if one did."""
        return self.writes.error

    def run(self, write: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Any other write of the trial's (samples, plots), under the same rule."""
        return self.writes.run(write, *args, **kwargs)

    def record(self, kind: str, step: int, **fields: Any) -> None:
        """A record in metrics.jsonl only."""
        self.writes.run(self.log.write, kind, step, **fields)

    def emit(self, kind: str, step: int, **fields: Any) -> None:
        """A record in metrics.jsonl, and in TensorBoard with report_to: tensorboard."""
        self.record(kind, step, **fields)
        if self.board is not None:
            self.writes.run(self.board.write, kind, step, **fields)

    def save_checkpoint(self, path: Path, trial: Trial, rank_rng: dict[str, Any]) -> None:
        """Rank 0: the records up to this step on disk, then the checkpoint (atomically)."""
        self.writes.run(self.log.sync)
        self.writes.run(save_checkpoint, path, checkpoint_contents(trial, rank_rng))

    def close(self) -> None:
        self.log.close()
        if self.board is not None:
            self.board.close()


def checkpoint_contents(trial: Trial, rank_rng: dict[str, Any]) -> dict[str, Any]:
    """Everything a resumed run needs to go on exactly (runner.checkpoint.RESUME_KEYS)."""
    config, state, t, data = trial.config, trial.state, trial.train, trial.data
    return {
        "model": trial.model.state_dict(),
        "optimizer": trial.optimizer.state_dict(),
        "scaler": trial.scaler.state_dict(),
        "monitor": trial.monitor.state_dict(),
        "trial": state.state_dict(),
        "rng": capture_rng_state(),
        **rank_rng,
        "schedule": {"step": state.step, "lr": lr_at(min(state.step, t.max_steps - 1), t)},
        "config": config_to_dict(config),
        "tokenizer": data.tokenizer.to_json(),
        "label_names": list(data.label_names),
        **({"task_label_names": data.task_labels} if config.task == "multitask" else {}),
    }
