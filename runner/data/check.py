"""The data a config points at, checked before any work: it exists, can be read, and is text.

check_data(config, source) is what `hpo train` and `hpo search` call before they create
anything, and what prepare_lm / prepare_classify call first, so every entry point refuses
the same inputs with the same message: "SOURCE: what is wrong (data.path)".

What counts as text: runner.data.text.looks_like_text. Only the start of a file is read, so a
multi-GB corpus is checked at once.
"""

from __future__ import annotations

import csv
import dataclasses
import os
from pathlib import Path

from runner.config import TrialConfig
from runner.data.text import (
    SNIFF_BYTES,
    TABLE_DELIMITERS,
    class_name_of_file,
    corpus_files,
    looks_like_text,
)
from runner.errors import DataError
from runner.task_config import TaskConfig
from runner.yaml_io import excerpt


def check_text_file(path: Path, source: str, key: str = "data.path") -> None:
    """DataError unless `path` is a readable text file."""
    try:
        with open(path, "rb") as file:
            head = file.read(SNIFF_BYTES)
    except OSError as err:
        raise DataError(f"{source}: cannot read {path} ({err.strerror or err}) ({key})") from None
    if not looks_like_text(head):
        raise DataError(
            f"{source}: {path} is not a text file (binary content in its first bytes); "
            f"point it at UTF-8 text ({key})"
        )


def check_data(config: TrialConfig, source: str) -> None:
    """DataError naming source and key when the config's data or pretrained model is unusable."""
    _check_pretrained(config.model.pretrained, source)
    if config.task == "multitask":  # each task's data as a classify experiment's
        _check_tasks(config, source)
        return
    path = config.data.path
    if path is None:
        if config.task == "classify":
            raise DataError(
                f"{source}: classify needs labelled data; set data.path to a CSV/TSV file or "
                "a folder with one file per class (data.path)"
            )
        return  # the standard library's source
    where = Path(path)
    if not where.exists():
        what = (
            "a CSV/TSV file or a folder" if config.task == "classify" else "a text file or folder"
        )
        raise DataError(
            f"{source}: {path} does not exist; point it at {what}"
            + ("" if config.task == "classify" else ", or leave it empty for the standard library")
            + " (data.path)"
        )
    if not os.access(where, os.R_OK | (os.X_OK if where.is_dir() else 0)):
        raise DataError(f"{source}: {path} is not readable (permission denied) (data.path)")
    if config.task == "classify":
        _check_labelled(where, config, source)
    elif where.is_dir():
        if not corpus_files(where):
            raise DataError(
                f"{source}: no text files found under {path}; add some or fix the path (data.path)"
            )
    else:
        check_text_file(where, source)


def _check_tasks(config: TrialConfig, source: str) -> None:
    """Each task's data, its errors naming the task's keys (tasks.N.path, ...)."""
    for index, task in enumerate(config.tasks):
        try:
            check_data(task_as_classify(config, task), source)
        except DataError as err:
            message = str(err)
            for key in ("data.path", "data.text_column", "data.label_column"):
                message = message.replace(key, f"tasks.{index}.{key.split('.')[1]}")
            raise DataError(message) from None
        where = Path(task.path)
        if where.is_dir():  # a folder's classes are its files: count them now (a table's later)
            classes = {
                class_name_of_file(p)
                for p in where.iterdir()
                if p.is_file() and not p.name.startswith(".")
            }
            if len(classes) != task.num_labels:
                raise DataError(
                    f"{source}: {where} holds {len(classes)} classes ({', '.join(sorted(classes)[:10])}), "
                    f"but task {task.name} says num_labels {task.num_labels} (tasks.{index}.num_labels)"
                )


def task_as_classify(config: TrialConfig, task: TaskConfig) -> TrialConfig:
    """The `task: classify` config that reads `task`'s data as the multitask config says: each
    task's data is checked (here) and prepared (runner.data.multitask) as that config's."""
    data = dataclasses.replace(
        config.data, path=task.path, text_column=task.text_column, label_column=task.label_column
    )
    return dataclasses.replace(config, task="classify", tasks=(), data=data)


def _check_labelled(where: Path, config: TrialConfig, source: str) -> None:
    if where.is_dir():
        files = sorted(p for p in where.iterdir() if p.is_file() and not p.name.startswith("."))
        if len(files) < 2:
            raise DataError(
                f"{source}: {where} holds {len(files)} file(s); put one file per class in it, "
                "at least 2 (data.path)"
            )
        for file in files:
            check_text_file(file, source)
        return
    delimiter = TABLE_DELIMITERS.get(where.suffix.lower())
    if delimiter is None:
        raise DataError(
            f"{source}: {where} is neither a .csv/.tsv file nor a folder; give the table one "
            "of those extensions or use a folder with one file per class (data.path)"
        )
    check_text_file(where, source)
    with open(where, "rb") as file:
        first = file.readline(SNIFF_BYTES)
    try:
        header_line = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        header_line = first.decode("latin-1")
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    header = next(
        csv.reader([header_line.rstrip("\r\n")], delimiter=delimiter, quoting=quoting), []
    )
    for key, column in (
        ("data.text_column", config.data.text_column),
        ("data.label_column", config.data.label_column),
    ):
        if column not in header:
            columns = ", ".join(excerpt(c, 30) for c in header[:10]) or "no columns"
            raise DataError(
                f"{source}: {where} has no column {excerpt(column)}; its header has {columns}; "
                f"set {key} to one of them ({key})"
            )


def _check_pretrained(path: str | None, source: str) -> None:
    # a folder of the tokenizer alone is enough for the data; the model needs its config.json
    # too, which runner.model.check_pretrained_dir checks when the model is built
    if path is not None and not Path(path).is_dir():
        raise DataError(
            f"{source}: {path} is not a local model folder; save one with "
            "save_pretrained(DIR), nothing is downloaded (model.pretrained)"
        )
