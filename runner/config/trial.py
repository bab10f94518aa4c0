"""TrialConfig: one training trial, its sections, and the metrics its task reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from runner.config.common import documented
from runner.config.data import DataConfig
from runner.config.evaluation import EvalConfig, MonitorConfig
from runner.config.model import ModelConfig
from runner.config.train import TrainConfig
from runner.direction import lower_is_better
from runner.schema import SEED
from runner.task_config import TaskConfig, task_metrics


@dataclass(frozen=True)
class TrialConfig:
    """One training trial, start to finish."""

    task: Literal["lm", "classify", "multitask"] = documented(
        "lm",
        "lm: causal language modelling; classify: sequence classification; multitask: several "
        "classification tasks (tasks) sharing one encoder",
    )
    name: str = documented("trial", "experiment name (MLflow experiment, default run folder)")
    seed: int = documented(0, "seeds data split, init, dropout and batch order", SEED)
    output_dir: str = documented(
        "runs/train", "trial folder: metrics.jsonl, result.json, checkpoints/"
    )
    data: DataConfig = field(default_factory=DataConfig, metadata={"doc": "data"})
    model: ModelConfig = field(default_factory=ModelConfig, metadata={"doc": "model"})
    train: TrainConfig = field(default_factory=TrainConfig, metadata={"doc": "train"})
    eval: EvalConfig = field(default_factory=EvalConfig, metadata={"doc": "eval"})
    monitor: MonitorConfig = field(default_factory=MonitorConfig, metadata={"doc": "monitor"})
    tasks: tuple[TaskConfig, ...] = documented(
        (),
        "multitask: a list of {name, path, num_labels, loss_weight (1.0), text_column, "
        "label_column}, one per task (runner/task_config.py)",
    )

    @property
    def objective_greater_is_better(self) -> bool:
        """Whether a larger objective metric is better."""
        if self.eval.greater_is_better is not None:
            return self.eval.greater_is_better
        return not lower_is_better(self.eval.metric_for_best_model)


# The metrics a trial of each task reports at each evaluation (runner.evaluate.evaluate).
REPORTED_METRICS = {
    "lm": ("val_loss", "val_perplexity"),
    "classify": ("val_loss", "val_accuracy", "val_f1"),
    # the means over tasks; each task's own val_<task>_<metric> too (reported_metrics)
    "multitask": ("val_loss", "val_accuracy", "val_f1"),
}


def reported_metrics(config: TrialConfig) -> tuple[str, ...]:
    """The metrics a trial of `config` reports at each evaluation."""
    return REPORTED_METRICS[config.task] + task_metrics(config)
