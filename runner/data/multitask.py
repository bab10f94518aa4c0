"""Multi-task data (`task: multitask`): each task's labelled examples, one tokenizer for all.

Each task is prepared as a `task: classify` experiment on its own path would be (split by
seed, encoded, length-batched, cached), except that every task is encoded with one shared
tokenizer: model.pretrained's, or a BPE/char tokenizer trained on the training splits of all
tasks together (cached like the tasks' arrays).

Batching: micro-batch i holds one length batch of every task, task t's being its own
micro-batch i (runner.data.classify: a pure function of (seed, i), reshuffled each epoch of
that task). So every step trains every task, the loss is the weighted sum of the tasks' losses
in that micro-batch (runner.multitask), and a smaller task goes through its epochs faster than
a larger one. An epoch of the experiment is one pass over its largest task. Since batches are
a pure function of the micro-batch counter, a checkpoint needs nothing more to resume exactly.
Keys are "<task>/input_ids", "<task>/attention_mask", "<task>/labels".

Example:
    >>> data = prepare_multitask(config)
    >>> sorted(data.train_batch(0, 0))[:2]
    ['aspect/attention_mask', 'aspect/input_ids']
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

import torch

from runner.config import TrialConfig
from runner.data.cache import cache_key, cache_root, load_entry, store_entry
from runner.data.check import check_data, task_as_classify
from runner.data.classify import ClassifyDataset, _natural_order, prepare_classify, split_examples
from runner.data.text import fingerprint, read_labelled_examples
from runner.data.tokenizer import TextTokenizer
from runner.errors import DataError

SEPARATOR = "/"  # between a task's name and a batch key: task names have no "/"
# the data record's per-task statistics: the counts that say what each task holds
TASK_STATS = ("train_examples", "val_examples", "examples_truncated", "num_labels")


def task_key(task: str, key: str) -> str:
    """The batch key of a task's tensor, e.g. sentiment/input_ids."""
    return f"{task}{SEPARATOR}{key}"


def split_batch(batch: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """{task: {input_ids, attention_mask, labels}} of a multitask batch, tasks in batch order."""
    tasks: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in batch.items():
        task, name = key.split(SEPARATOR, 1)
        tasks.setdefault(task, {})[name] = value
    return tasks


class MultiTaskDataset:
    """The tasks' ClassifyDatasets behind the Dataset protocol of runner.data."""

    def __init__(
        self,
        tasks: dict[str, ClassifyDataset],
        tokenizer: TextTokenizer,
        stats: dict[str, float | int | bool],
    ) -> None:
        self.tasks = tasks
        self.tokenizer = tokenizer
        self.label_names: list[str] = []  # one list per task: task_labels
        self.task_labels = {name: list(data.label_names) for name, data in tasks.items()}
        self.batches_per_epoch = max(data.batches_per_epoch for data in tasks.values())
        self.stats = {**stats, "train_batches_per_epoch": self.batches_per_epoch}

    def train_batch(self, index: int, batch_size: int) -> dict[str, torch.Tensor]:
        """Micro-batch `index`: micro-batch `index` of every task (see the module doc)."""
        return {
            task_key(name, key): value
            for name, data in self.tasks.items()
            for key, value in data.train_batch(index, batch_size).items()
        }

    def val_batches(self, batch_size: int, max_batches: int) -> list[dict[str, torch.Tensor]]:
        """Every task's fixed validation batches (max_batches per task), each of one task."""
        return [
            {task_key(name, key): value for key, value in batch.items()}
            for name, data in self.tasks.items()
            for batch in data.val_batches(batch_size, max_batches)
        ]

    def num_tokens(self, batch: Mapping[str, torch.Tensor]) -> int:
        """Real (non-pad) tokens in a batch, all tasks together."""
        return sum(int(part["attention_mask"].sum()) for part in split_batch(batch).values())


def prepare_multitask(config: TrialConfig) -> MultiTaskDataset:
    """Every task's data, encoded with one tokenizer; DataError on unusable input."""
    started = time.perf_counter()
    check_data(config, f"experiment '{config.name}'")
    tokenizer = shared_tokenizer(config)
    tasks: dict[str, ClassifyDataset] = {}
    stats: dict[str, float | int | bool] = {"vocab_size": tokenizer.vocab_size}
    from_cache = True
    for index, task in enumerate(config.tasks):
        data = prepare_classify(task_as_classify(config, task), tokenizer)
        if len(data.label_names) != task.num_labels:
            raise DataError(
                f"experiment '{config.name}': {task.path} has {len(data.label_names)} classes "
                f"{data.label_names[:10]}, but task {task.name} says num_labels "
                f"{task.num_labels} (tasks.{index}.num_labels)"
            )
        tasks[task.name] = data
        from_cache = from_cache and bool(data.stats.get("from_cache"))
        stats.update({f"{task.name}_{k}": data.stats[k] for k in TASK_STATS if k in data.stats})
    stats.update(
        tasks=len(tasks),
        from_cache=from_cache,
        prepare_seconds=round(time.perf_counter() - started, 3),
    )
    return MultiTaskDataset(tasks, tokenizer, stats)


def shared_tokenizer(config: TrialConfig) -> TextTokenizer:
    """model.pretrained's tokenizer, or one trained on every task's training split (cached)."""
    if config.model.pretrained:
        return TextTokenizer.from_pretrained(config.model.pretrained)
    d = config.data
    train_texts: list[str] = []
    sources: list[str] = []
    for task in config.tasks:
        texts, labels, _ = read_labelled_examples(
            Path(task.path), task.text_column, task.label_column
        )
        # the split prepare_classify makes: label ids in the same order, the same seed
        names = {name: i for i, name in enumerate(sorted(set(labels), key=_natural_order))}
        train_rows, _ = split_examples([names[x] for x in labels], d.val_fraction, config.seed)
        train_texts.extend(texts[i] for i in train_rows)
        sources.append(fingerprint(texts + labels))
    root = cache_root(d.cache_dir)
    key = cache_key(
        {
            "task": "multitask-tokenizer",
            "sources": sources,
            "tokenizer": d.tokenizer,
            "vocab_size": d.vocab_size if d.tokenizer == "bpe" else None,
            "val_fraction": d.val_fraction,
            "seed": config.seed,
        }
    )
    entry = load_entry(root, key)
    if entry is None:
        if d.tokenizer == "bpe":
            tokenizer = TextTokenizer.train_bpe(train_texts, d.vocab_size)
        else:
            tokenizer = TextTokenizer.train_char(train_texts)
        entry = store_entry(root, key, {}, {"tokenizer": tokenizer.to_json()})
    return TextTokenizer.from_json(entry.texts["tokenizer"])
