"""The tasks of a multi-task experiment (`task: multitask`): one entry of `tasks:` per task.

    task: multitask
    tasks:
      - {name: sentiment, path: ../data/sentiment, num_labels: 2}
      - {name: aspect, path: ../data/aspect, num_labels: 3, loss_weight: 0.5}

Each task's data is read like a `task: classify` experiment's data.path (a CSV/TSV file or a
folder of one file per class); the data section's other keys (tokenizer, vocab_size,
max_length, max_tokens_per_batch, val_fraction, cache_dir) apply to every task. runner.config
reads and checks the entries with the functions below; runner.multitask trains them.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runner.errors import ConfigError
from runner.schema import Allowed, checked, failing
from runner.yaml_io import excerpt

# a task's name becomes part of metric names (val_<name>_accuracy) and batch keys: letters,
# digits and underscores keep both MLflow-safe and unambiguous
TASK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
MAX_TASKS = 64
MAX_LABELS = 100_000
# the metrics each task reports, as val_<task>_<metric>; val_<metric> is their mean over tasks
TASK_METRICS = ("loss", "accuracy", "f1")


def _doc(doc: str, allowed: Allowed | None = None, **default: Any) -> Any:
    return field(metadata={"doc": doc, "allowed": allowed or Allowed()}, **default)


@dataclass(frozen=True)
class TaskConfig:
    """One classification task of a multitask experiment: its data, head size and loss weight."""

    name: str = _doc("the task's name: letters, digits, _; metrics are val_<name>_accuracy, ...")
    path: str = _doc("the task's labelled data, as data.path of a classify experiment")
    num_labels: int = _doc(
        "classes of the task (its head's outputs); the data must have as many",
        Allowed(low=2, high=MAX_LABELS),
    )
    loss_weight: float = _doc(
        "the task's weight in the training loss",
        Allowed(above=0),
        default=1.0,
    )
    text_column: str = _doc("CSV/TSV: column holding the text", default="text")
    label_column: str = _doc("CSV/TSV: column holding the label", default="label")


REQUIRED = tuple(f.name for f in dataclasses.fields(TaskConfig) if f.default is dataclasses.MISSING)
KEYS = tuple(f.name for f in dataclasses.fields(TaskConfig))
_HINTS = typing.get_type_hints(TaskConfig)
ALLOWED = {  # each key's kind (its annotation) and range
    f.name: dataclasses.replace(f.metadata["allowed"], kind=_HINTS[f.name])
    for f in dataclasses.fields(TaskConfig)
}


def build_tasks(raw: Any, source: str) -> tuple[TaskConfig, ...]:
    """`tasks:` (a list of mappings) as TaskConfigs; ConfigError "SOURCE: what (tasks.I.KEY)"."""
    if not isinstance(raw, list | tuple):
        raise ConfigError(
            f"{source}: expected a list of tasks, each a mapping with "
            f"{', '.join(REQUIRED)}, got {excerpt(raw)} (tasks)"
        )
    tasks = []
    fail = failing(source)
    for index, item in enumerate(raw):
        where = f"tasks.{index}"
        if not isinstance(item, dict):
            raise ConfigError(f"{source}: a task must be a mapping, got {excerpt(item)} ({where})")
        for key in item:
            if key not in KEYS:
                raise ConfigError(
                    f"{source}: unknown task key {excerpt(key)}; a task has "
                    f"{', '.join(KEYS)} ({where}.{excerpt(key, 40)[1:-1]})"
                )
        for key in REQUIRED:
            if item.get(key) is None:
                raise ConfigError(f"{source}: a task needs {key} ({where}.{key})")
        values = {
            key: checked(value, ALLOWED[key], f"{where}.{key}", fail) for key, value in item.items()
        }
        tasks.append(TaskConfig(**values))
    return tuple(tasks)


def validate_tasks(config: Any, need: Callable[[bool, str, str], None]) -> None:
    """The tasks of `config` (a TrialConfig) and what multitask allows of the rest."""
    tasks, d = config.tasks, config.data
    if config.task != "multitask":
        need(not tasks, "tasks", f"tasks is for task: multitask, not {config.task}")
        return
    need(bool(tasks), "tasks", "task multitask needs at least one entry in tasks")
    need(len(tasks) <= MAX_TASKS, "tasks", f"at most {MAX_TASKS} tasks, got {len(tasks)}")
    need(
        d.path is None,
        "data.path",
        "task multitask reads each task's tasks.N.path; remove data.path",
    )
    need(
        not d.clean.enabled,
        "data.clean",
        "data.clean is not supported with task multitask yet; clean each task's data first",
    )
    need(
        not d.augment_copies,
        "data.augment_copies",
        "EDA augmentation is not supported with task multitask yet",
    )
    seen: dict[str, int] = {}
    for index, task in enumerate(tasks):
        where = f"tasks.{index}"
        need(
            TASK_NAME.fullmatch(task.name) is not None,
            f"{where}.name",
            f"{excerpt(task.name, 40)} is not a task name: a letter, then letters, digits or _ "
            "(40 at most), as it becomes part of metric names",
        )
        need(
            task.name not in seen,
            f"{where}.name",
            f"duplicate task name {task.name!r} (also tasks.{seen.get(task.name)}.name)",
        )
        seen[task.name] = index
        need(bool(task.path), f"{where}.path", "a task needs the path of its labelled data")


def task_metrics(config: Any) -> tuple[str, ...]:
    """The per-task metrics of a multitask config: val_<task>_<metric> for each task."""
    return tuple(f"val_{t.name}_{m}" for t in config.tasks for m in TASK_METRICS)
