"""Bad input, table-driven: every row is something a user can get wrong, and `hpo` must answer it
with exit code 2 and exactly one line on stderr, `hpo: error: ...`, naming the file and the key
(where there is one), with no traceback, no escape sequence reaching the terminal, nothing new
in the working folder, and quickly (before any training).

Each row runs through hpo.cli.main(argv) in a fresh temporary working folder (cheap: the heavy
imports happen once), and the rows in SUBPROCESS also as a real `hpo` process (the console
script of this venv, PYTHONPATH inherited), which also checks what logging or a library prints.

Rows whose `owner` names another branch (validation, study-store, runner-durability) pass once
that branch's checks are merged; they fail before.
"""

from __future__ import annotations

import functools
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from hpo.cli import main

ROOT = Path(__file__).parents[1]
EXP = str(ROOT / "experiments" / "lm_tiny.yaml")
HPO = Path(sys.executable).with_name("hpo")
MAX_SECONDS = 20.0

Content = str | bytes | Callable[[], str | bytes] | None  # None: a folder


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    files: dict[str, Content] = field(default_factory=dict)
    names: tuple[str, ...] = ()  # what the error line must contain: the file, the key
    owner: str = ""  # another branch whose checks this row needs ("" : this one)


CASES: dict[str, Case] = {}


def case(
    name: str,
    argv: list[str],
    files: dict[str, Content] | None = None,
    names: tuple[str, ...] = (),
    owner: str = "",
) -> None:
    assert name not in CASES, name
    CASES[name] = Case(tuple(argv), dict(files or {}), tuple(names), owner)


# ----------------------------------------------------------------------------- assets

SPACE_HEAD = f"experiment: {EXP}\n"
LR = "  train.learning_rate: {type: float, low: 0.0001, high: 0.01, log: true}\n"
BUDGET = "budget:\n  trials: 1\n  max_steps: 2\n"
GOOD_SPACE = SPACE_HEAD + "params:\n" + LR + BUDGET
SEARCH = ["search", "--space", "space.yaml", "--no-track", "--quiet"]
# an experiment that trains one step: a row wrongly accepted ends fast (and fails on its message)
GOOD_EXPERIMENT = "task: lm\ntrain:\n  max_steps: 1\n"
TRAIN = ["train", "--config", "exp.yaml", "--quiet"]
TRAIN_EXP = ["train", "--config", EXP, "--quiet", "-o", "train.max_steps=1", "-o", "output_dir=o"]


def alias_bomb(levels: int = 9, width: int = 10) -> str:
    """The billion laughs: `width` aliases per level, each level `width` times the one before."""
    lines = ['a0: &a0 ["lol"]']
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def doubling_bomb(levels: int = 24) -> str:
    """Two aliases per level, under the alias cap's 50, still 2**24 values expanded."""
    lines = ["d0: &d0 [x, x]"]
    lines += [f"d{i}: &d{i} [*d{i - 1}, *d{i - 1}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def doubling_flow(levels: int = 24) -> str:
    """doubling_bomb as one flow sequence, for a -o value."""
    items = ["&d0 [x, x]"] + [f"&d{i} [*d{i - 1}, *d{i - 1}]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def large(head: str, tail: str = "") -> str:
    return head + "# " + "x" * 1_100_000 + "\n" + tail


@functools.cache
def _checkpoint_parts() -> dict:
    """A small real checkpoint's state (a 1-layer GPT-2 of lm_tiny's config, char tokenizer)."""
    from runner.checkpoint import FORMAT, VERSION
    from runner.config import config_to_dict, load_config
    from runner.data.tokenizer import TextTokenizer
    from runner.model import build_model

    config = load_config(
        EXP, ["model.n_layer=1", "model.n_embd=16", "model.n_head=2", "data.tokenizer=char"]
    )
    tokenizer = TextTokenizer.train_char(["hello world, a tiny corpus"])
    model = build_model(config, tokenizer.vocab_size, tokenizer.pad_id)
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": model.state_dict(),
        "config": config_to_dict(config),
        "tokenizer": tokenizer.to_json(),
        "label_names": [],
        "optimizer": {},
        "scaler": {},
        "monitor": {},
        "trial": {},
        "rng": {},
    }


def checkpoint(**changes) -> Callable[[], bytes]:
    """The bytes of a torch.save of the real checkpoint with `changes` (None: key removed)."""

    def make() -> bytes:
        import torch

        state = dict(_checkpoint_parts())
        for key, value in changes.items():
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    return make


def truncated_checkpoint() -> bytes:
    data = checkpoint()()
    return data[: len(data) // 2]


def other_model_weights() -> dict:
    """Weights of a wider model than the checkpoint's config builds."""
    import torch

    return {
        k: torch.zeros(*(2 * s for s in v.shape)) for k, v in _checkpoint_parts()["model"].items()
    }


def config_with(**section_changes) -> dict:
    config = {
        k: (dict(v) if isinstance(v, dict) else v) for k, v in _checkpoint_parts()["config"].items()
    }
    for dotted, value in section_changes.items():
        section, key = dotted.split("__")
        config[section][key] = value
    return config


@functools.cache
def zip_bomb() -> bytes:
    """A zip of 200 MB of zeros in a few hundred KB (deflated): what torch.save never writes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\0" * 200_000_000)
    return buffer.getvalue()


def forged_sizes() -> bytes:
    """A real checkpoint whose central directory declares one entry of ~4 GB."""
    data = bytearray(checkpoint()())
    at = data.rfind(b"PK\x01\x02")  # the last central directory header
    data[at + 24 : at + 28] = (0xFFFF_FFF0).to_bytes(4, "little")  # its uncompressed size
    return bytes(data)


def legacy_pickle() -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"format": "hpo-runner-checkpoint"}, buffer, _use_new_zipfile_serialization=False)
    return buffer.getvalue()


def pretrained_config(text: str, weights: bool = True) -> dict[str, Content]:
    files: dict[str, Content] = {"pre/config.json": text}
    if weights:
        files["pre/model.safetensors"] = b"not really weights"
    return files


STUDY_YAML = yaml.safe_dump(
    {
        "study": "st",
        "driver": "optuna",
        "space": {
            "params": {"train.learning_rate": {"type": "float", "low": 1e-4, "high": 1e-2}},
            "objective": {"metric": "val_loss", "direction": "minimize"},
        },
    }
)
TRIAL_JSON = (
    '{"number": 0, "params": {"train.learning_rate": 0.001}, "state": "complete", '
    '"value": 3.0, "values": [3.0], "reason": null, "duration": 1.0, "steps": 2}\n'
)


def study(study_yaml: Content = STUDY_YAML, trial: Content = TRIAL_JSON) -> dict[str, Content]:
    return {"runs/st/study.yaml": study_yaml, "runs/st/trials/0/trial.json": trial}


def params_yaml(**changes) -> str:
    params = {
        "prepare": {"experiment": EXP},
        "search": {
            "space": "space.yaml",
            "driver": "optuna",
            "study": "pipeline",
            "trials": 1,
            "max_steps": 2,
            "seed": 0,
            "track": False,
        },
        "train": {"max_steps": 2},
    }
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        if value is ...:
            params[section].pop(key)
        else:
            params[section][key] = value
    return yaml.safe_dump(params, sort_keys=False)


# ----------------------------------------------------------------------------- space files


def space_case(name: str, text: Content, *names: str, owner: str = "", argv=()) -> None:
    case(f"space-{name}", [*SEARCH, *argv], {"space.yaml": text}, ("space.yaml", *names), owner)


space_case("yaml-syntax", "params:\n  train.learning_rate: {type: float\n  low: 1\n", ":3:")
space_case("duplicate-section", GOOD_SPACE + "params:\n" + LR, "duplicate key 'params'")
space_case("duplicate-param", SPACE_HEAD + "params:\n" + LR + LR, "duplicate key")
space_case(
    "duplicate-spec-key",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: float, low: 0.1, low: 0.2, high: 1}\n",
    "duplicate key 'low'",
)
space_case("billion-laughs", alias_bomb() + GOOD_SPACE, "aliases")
space_case("doubling-bomb", doubling_bomb() + GOOD_SPACE, "expanded")
space_case("recursive-alias", "a: &a [*a]\n" + GOOD_SPACE, "alias")
space_case("over-1mb", large(GOOD_SPACE), "1 MB")
space_case("not-utf8", GOOD_SPACE.encode() + "# caf\xe9\n".encode("latin-1"), "UTF-8")
space_case("escape-char", GOOD_SPACE + "description: \x1b[2J\n", "invalid YAML")
space_case("nul-byte", GOOD_SPACE + "description: \x00\n", "invalid YAML")
space_case("too-deep", "description: " + "[" * 150 + "]" * 150 + "\n" + GOOD_SPACE, "deeper")
space_case(
    "python-tag",
    GOOD_SPACE + "description: !!python/object/apply:os.system [touch pwned]\n",
    "invalid YAML",
)
space_case("list-as-key", GOOD_SPACE + "? [a, b]\n: 1\n", "key")
space_case("top-level-list", "- params\n", "expected a mapping")
space_case("top-level-scalar", "just words\n", "expected a mapping")
space_case("empty-file", "", "expected a mapping")
space_case("unknown-section", GOOD_SPACE + "parms: {}\n", "parms")
space_case("params-empty", SPACE_HEAD + "params: {}\n", "params")
space_case("params-list", SPACE_HEAD + "params: [train.learning_rate]\n", "params")
space_case(
    "unknown-config-key",
    SPACE_HEAD + "params:\n  train.lr: {type: float, low: 0.1, high: 1}\n",
    "train.lr",
)
space_case(
    "param-key-escape",
    SPACE_HEAD + 'params:\n  "train.learning_rate\\e[2J": {type: float, low: 0.1, high: 1}\n',
    "params.",
)
space_case(
    "param-key-space",
    SPACE_HEAD + 'params:\n  "train. learning_rate": {type: float, low: 0.1, high: 1}\n',
    "params.",
)
space_case(
    "param-key-number", SPACE_HEAD + "params:\n  12: {type: float, low: 0.1, high: 1}\n", "params."
)
space_case(
    "unknown-type",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: floaty, low: 0.1, high: 1}\n",
    "train.learning_rate",
)
space_case(
    "low-above-high",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: float, low: 1, high: 0.1}\n",
    "train.learning_rate",
)
space_case(
    "log-from-zero",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: float, low: 0, high: 1, log: true}\n",
    "train.learning_rate",
)
space_case(
    "low-not-number",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: float, low: abc, high: 1}\n",
    "train.learning_rate",
)
space_case(
    "high-nan",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: float, low: 0.1, high: .nan}\n",
    "train.learning_rate",
)
space_case(
    "high-inf",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: float, low: 0.1, high: .inf}\n",
    "train.learning_rate",
)
space_case(
    "choices-empty",
    SPACE_HEAD + "params:\n  train.optim: {type: categorical, choices: []}\n",
    "train.optim",
)
space_case(
    "int-step-zero",
    SPACE_HEAD + "params:\n  model.n_layer: {type: int, low: 1, high: 4, step: 0}\n",
    "model.n_layer",
)
space_case(
    "float-step-negative",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: float, low: 0.1, high: 1, step: -0.1}\n",
    "train.learning_rate",
)
space_case(
    "unknown-spec-key",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: float, lo: 0.1, high: 1}\n",
    "train.learning_rate",
)
space_case(
    "objective-direction",
    GOOD_SPACE + "objective: {metric: val_loss, direction: sideways}\n",
    "objective",
)
space_case(
    "budget-trials-zero", SPACE_HEAD + "params:\n" + LR + "budget: {trials: 0}\n", "budget.trials"
)
space_case(
    "budget-trials-text",
    SPACE_HEAD + "params:\n" + LR + "budget: {trials: many}\n",
    "budget.trials",
)
space_case(
    "budget-timeout-text",
    SPACE_HEAD + "params:\n" + LR + "budget: {trials: 1, timeout: forever}\n",
    "budget.timeout",
)
space_case("driver-unknown-option", GOOD_SPACE + "driver: {samplr: tpe}\n", "driver.samplr")
space_case("driver-unknown-sampler", GOOD_SPACE + "driver: {sampler: tpe2}\n", "driver.sampler")
space_case(  # a number or auto, nothing else
    "driver-startup-trials-word",
    GOOD_SPACE + "driver: {n_startup_trials: many}\n",
    "driver.n_startup_trials",
)
space_case(
    "grid-1e9-int-range",
    SPACE_HEAD
    + "params:\n  seed: {type: int, low: 0, high: 1000000000}\n"
    + BUDGET
    + "driver: {sampler: grid}\n",
    "params.seed",
    "1,000,000,001",
)
space_case(
    "grid-product",
    SPACE_HEAD
    + "params:\n  seed: {type: int, low: 0, high: 999}\n  model.n_layer: {type: int, low: 1, high: 1000}\n"
    + BUDGET
    + "driver: {sampler: grid}\n",
    "1,000,000",
)
space_case("grid-continuous", GOOD_SPACE + "driver: {sampler: grid}\n", "train.learning_rate")
space_case(
    "ray-grid-1e9",
    SPACE_HEAD
    + "params:\n  seed: {type: int, low: 0, high: 1000000000}\n"
    + BUDGET
    + "driver: {searcher: grid}\n",
    "params.seed",
    argv=("--driver", "ray"),
)
space_case(  # Ray's ASHA decides which trials stop: an Optuna pruner beside it would not
    "ray-pruner-with-ray-scheduler",
    GOOD_SPACE + "driver: {pruner: hyperband, ray: {scheduler: asha}}\n",
    "driver.pruner",
    "scheduler auto",
    argv=("--driver", "ray"),
)
space_case(  # Ray asserts it inside the cluster: said before the cluster starts
    "ray-asha-grace-over-max-steps",
    GOOD_SPACE + "driver: {ray: {scheduler: asha, grace_period: 5}}\n",
    "driver.grace_period",
    "budget.max_steps 2",
    argv=("--driver", "ray"),
)
space_case(
    "ray-pbt-quantile-over-half",
    GOOD_SPACE + "driver: {ray: {quantile_fraction: 0.75}}\n",
    "driver.ray.quantile_fraction",
    "must be in [0, 0.5], got 0.75",
    argv=("--driver", "ray"),
)
space_case(  # Ray's ASHA with 0 would keep no trial at a rung: refused at load, not in Ray
    "ray-asha-reduction-factor-zero",
    GOOD_SPACE + "driver: {ray: {scheduler: asha, reduction_factor: 0}}\n",
    "driver.ray.reduction_factor",
    "must be >= 2, got 0",
    argv=("--driver", "ray"),
)
space_case(
    "optuna-hyperband-reduction-factor-zero",
    GOOD_SPACE + "driver: {pruner: hyperband, reduction_factor: 0}\n",
    "driver.reduction_factor",
    "must be >= 2, got 0",
)
space_case(
    "ray-cpus-per-trial-negative",
    GOOD_SPACE + "driver: {ray: {cpus_per_trial: -1}}\n",
    "driver.ray.cpus_per_trial",
    "must be >= 0, got -1",
    argv=("--driver", "ray"),
)
space_case(
    "ray-median-needs-a-sample",
    GOOD_SPACE + "driver: {ray: {min_samples_required: 0}}\n",
    "driver.ray.min_samples_required",
    argv=("--driver", "ray"),
)
space_case(
    "when-unknown-param",
    SPACE_HEAD
    + "params:\n"
    + LR
    + "  train.weight_decay: {type: float, low: 0, high: 0.1, when: {train.optim: sgd}}\n",
    "train.optim",
)
space_case(
    "experiment-missing",
    "experiment: nope.yaml\nparams:\n" + LR + BUDGET,
    "nope.yaml",
    "experiment",
    owner="validation",
)
space_case(
    "value-below-schema",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: float, low: -1, high: 0.1}\n",
    "train.learning_rate",
    owner="validation",
)
space_case(
    "int-range-below-schema",
    SPACE_HEAD + "params:\n  model.n_layer: {type: int, low: 0, high: 2}\n",
    "model.n_layer",
    owner="validation",
)
space_case(
    "choice-not-in-schema",
    SPACE_HEAD + "params:\n  train.optim: {type: categorical, choices: [adamw, lion]}\n",
    "train.optim",
    owner="validation",
)
space_case(
    "objective-metric-unknown",
    GOOD_SPACE + "objective: val_bleu\n",
    "objective",
    owner="validation",
)
space_case(  # found by the fuzz test: 1 / 5e-324 overflowed to a traceback
    "step-subnormal",
    SPACE_HEAD + "params:\n  train.learning_rate: {type: float, low: 0, high: 1, step: 5.0e-324}\n",
    "train.learning_rate.step",
    "too small",
)
space_case("seed-negative", GOOD_SPACE + "driver: {seed: -1}\n", "driver.seed", owner="validation")
case("space-missing", SEARCH, {}, ("space.yaml", "not found"))
case("space-is-folder", SEARCH, {"space.yaml": None}, ("space.yaml", "not a file"))
case(
    "space-stem-unsafe",
    [*SEARCH[:2], "my space.yaml", *SEARCH[3:]],
    {"my space.yaml": GOOD_SPACE},
    ("study name", "--study"),
)

# ----------------------------------------------------------------------------- experiment files


def config_case(name: str, text: Content, *names: str, owner: str = "", argv=()) -> None:
    case(f"config-{name}", [*TRAIN, *argv], {"exp.yaml": text}, ("exp.yaml", *names), owner)


config_case("yaml-syntax", "train: {max_steps: 1\n", "invalid YAML")
config_case("top-level-list", "- task\n", "mapping")
config_case("unknown-key", GOOD_EXPERIMENT + "trian: {}\n", "trian")
config_case("unknown-nested-key", "train:\n  max_step: 1\n", "train.max_step")
config_case("lr-text", "train:\n  max_steps: 1\n  learning_rate: fast\n", "train.learning_rate")
config_case("lr-negative", "train:\n  max_steps: 1\n  learning_rate: -0.1\n", "train.learning_rate")
config_case("lr-nan", "train:\n  max_steps: 1\n  learning_rate: .nan\n", "train.learning_rate")
config_case("max-steps-zero", "train:\n  max_steps: 0\n", "train.max_steps")
config_case("max-steps-fraction", "train:\n  max_steps: 1.5\n", "train.max_steps")
config_case(
    "batch-zero",
    GOOD_EXPERIMENT + "  per_device_train_batch_size: 0\n",
    "train.per_device_train_batch_size",
)
config_case(
    "heads-do-not-divide", GOOD_EXPERIMENT + "model: {n_embd: 100, n_head: 3}\n", "model.n_embd"
)
config_case("device-tpu", GOOD_EXPERIMENT + "  device: tpu\n", "train.device")
config_case("task-unknown", "task: regress\ntrain: {max_steps: 1}\n", "task")
config_case(
    "metric-for-task",
    GOOD_EXPERIMENT + "eval: {metric_for_best_model: val_accuracy}\n",
    "eval.metric_for_best_model",
)
config_case("val-fraction", GOOD_EXPERIMENT + "data: {val_fraction: 1.5}\n", "data.val_fraction")
config_case("vocab-tiny", GOOD_EXPERIMENT + "data: {vocab_size: 10}\n", "data.vocab_size")
config_case("block-size-one", GOOD_EXPERIMENT + "data: {block_size: 1}\n", "data.block_size")
config_case("warmup-ratio-one", GOOD_EXPERIMENT + "  warmup_ratio: 1\n", "train.warmup_ratio")
config_case("section-scalar", "train: 5\n", "train")
config_case("optim-unknown", GOOD_EXPERIMENT + "  optim: lion\n", "train.optim")
case(  # run_trial finds it; the folder and the key are named
    "config-pretrained-missing",
    [*TRAIN, "-o", "model.pretrained=nowhere"],
    {"exp.yaml": GOOD_EXPERIMENT},
    ("nowhere", "model.pretrained"),
)
config_case(
    "duplicate-key",
    GOOD_EXPERIMENT + "task: classify\n",
    "duplicate key 'task'",
    owner="runner-durability",
)
config_case("billion-laughs", alias_bomb() + GOOD_EXPERIMENT, "aliases", owner="runner-durability")
config_case(
    "over-1mb", large(GOOD_EXPERIMENT, "train: {max_steps: 0}\n"), "1 MB", owner="runner-durability"
)
config_case(
    "not-utf8",
    GOOD_EXPERIMENT.encode() + "name: caf\xe9\n".encode("latin-1"),
    "UTF-8",
    owner="runner-durability",
)
config_case(
    "data-path-missing",
    GOOD_EXPERIMENT + "data: {path: no_such_corpus.txt}\n",
    "data.path",
    owner="validation",
)
# task: multitask (runner/task_config.py): the tasks list, then each task's data
MULTITASK = "task: multitask\ntrain:\n  max_steps: 1\ntasks:\n"
SENTIMENT_TASK = f"  - {{name: sentiment, path: {ROOT / 'data' / 'sentiment'}, num_labels: 2}}\n"
config_case(
    "multitask-unknown-task-key",
    MULTITASK + "  - {name: a, path: x, num_labels: 2, weight: 2}\n",
    "unknown task key",
    "tasks.0.weight",
)
config_case("multitask-no-path", MULTITASK + "  - {name: a, num_labels: 2}\n", "tasks.0.path")
config_case(
    "multitask-weight-zero",
    MULTITASK + SENTIMENT_TASK + "  - {name: b, path: x, num_labels: 2, loss_weight: 0}\n",
    "tasks.1.loss_weight",
)
config_case(
    "multitask-weight-negative",
    MULTITASK + "  - {name: a, path: x, num_labels: 2, loss_weight: -1}\n",
    "tasks.0.loss_weight",
)
config_case("multitask-duplicate-name", MULTITASK + SENTIMENT_TASK + SENTIMENT_TASK, "tasks.1.name")
config_case(
    "multitask-one-label",
    MULTITASK + "  - {name: a, path: x, num_labels: 1}\n",
    "tasks.0.num_labels",
)
config_case("multitask-no-tasks", "task: multitask\ntrain: {max_steps: 1}\n", "(tasks)")
config_case("multitask-tasks-not-a-list", MULTITASK.replace("tasks:\n", "tasks: 3\n"), "(tasks)")
config_case("multitask-tasks-for-lm", GOOD_EXPERIMENT + "tasks:\n" + SENTIMENT_TASK, "(tasks)")
config_case(
    "multitask-task-path-missing",
    MULTITASK + "  - {name: a, path: no_such_folder, num_labels: 2}\n",
    "no_such_folder",
    "tasks.0.path",
)
config_case(
    "multitask-num-labels-not-the-data-s",
    MULTITASK + SENTIMENT_TASK.replace("num_labels: 2", "num_labels: 3"),
    "tasks.0.num_labels",
)
case(  # a multitask experiment reports each task's metrics and their mean, nothing else
    "space-multitask-unknown-metric",
    SEARCH,
    {
        "space.yaml": f"experiment: {ROOT / 'experiments' / 'multitask.yaml'}\n"
        "objective: {metric: val_nope_accuracy, direction: maximize}\nparams:\n" + LR + BUDGET
    },
    ("space.yaml", "val_aspect_accuracy", "objective.metric"),
)
config_case("seed-negative", "seed: -1\n" + GOOD_EXPERIMENT, "seed", owner="validation")
case("config-missing", TRAIN, {}, ("exp.yaml", "not found"))
case("config-is-folder", TRAIN, {"exp.yaml": None}, ("exp.yaml",))

# ----------------------------------------------------------------------------- -o values


def override_case(name: str, value: str, *names: str, owner: str = "") -> None:
    case(f"override-{name}", [*TRAIN_EXP, "-o", value], {}, names, owner)


override_case("yaml-syntax", "train.learning_rate=[", "-o train.learning_rate", "invalid YAML")
override_case("duplicate-key", "model={n_layer: 1, n_layer: 2}", "-o model", "duplicate key")
override_case("recursive-alias", "train.learning_rate=&a [*a]", "-o train.learning_rate", "alias")
override_case(
    "alias-bomb", "train.learning_rate=" + doubling_flow(), "-o train.learning_rate", "expanded"
)
override_case(
    "python-tag",
    "train.learning_rate=!!python/object/apply:os.system [x]",
    "-o train.learning_rate",
)
override_case("escape-char", "train.learning_rate=\x1b[2J", "-o train.learning_rate")
override_case("no-equals", "train.learning_rate", "train.learning_rate", "key=value")
override_case("unknown-key", "train.lr=0.1", "train.lr")
override_case("empty-key", "=1", "key")
override_case("lr-text", "train.learning_rate=fast", "train.learning_rate")
override_case("lr-negative", "train.learning_rate=-1", "train.learning_rate")
override_case("lr-nan", "train.learning_rate=.nan", "train.learning_rate")
override_case("max-steps-zero", "train.max_steps=0", "train.max_steps")
override_case("section-scalar", "train=5", "train")
override_case("into-a-value", "train.learning_rate.x=1", "train.learning_rate")
override_case("device-tpu", "train.device=tpu", "train.device")
override_case("task-unknown", "task=regress", "task")
override_case(
    "metric-for-task", "eval.metric_for_best_model=val_bleu", "eval.metric_for_best_model"
)
override_case("heads", "model.n_head=3", "model.n_embd")
override_case("val-fraction-zero", "data.val_fraction=0", "data.val_fraction")
override_case("precision", "train.precision=fp8", "train.precision")
override_case("key-escape", "train.\x1b[2Jlr=1", "unknown config key")
case(
    "override-search-unknown-key",
    [*SEARCH, "-o", "train.lr=0.1"],
    {"space.yaml": GOOD_SPACE},
    ("train.lr",),
)
case(
    "override-prepare-yaml",
    ["prepare", "--config", EXP, "-o", "data.max_chars={"],
    {},
    ("-o data.max_chars", "invalid YAML"),
)

# ----------------------------------------------------------------------------- flags

GOOD = {"space.yaml": GOOD_SPACE}
case("flag-no-command-known", ["bogus"], {}, ("invalid choice",))
case("flag-unknown-global", ["--nope", "status", "x"], {}, ("--nope",))
case("flag-search-no-space", ["search"], {}, ("--space",))
case("flag-trials-zero", [*SEARCH, "--trials", "0"], GOOD, ("--trials",))
case("flag-trials-negative", [*SEARCH, "--trials", "-3"], GOOD, ("--trials",))
case("flag-trials-text", [*SEARCH, "--trials", "many"], GOOD, ("--trials",))
case("flag-max-steps-zero", [*SEARCH, "--max-steps", "0"], GOOD, ("--max-steps",))
case("flag-parallel-zero", [*SEARCH, "--parallel", "0"], GOOD, ("--parallel",))
case("flag-seed-negative", [*SEARCH, "--seed", "-1"], GOOD, ("--seed",))
case("flag-gpus-negative", [*SEARCH, "--gpus-per-trial", "-1"], GOOD, ("--gpus-per-trial",))
case("flag-timeout-text", [*SEARCH, "--timeout", "forever"], GOOD, ("--timeout",))
case("flag-driver-unknown", [*SEARCH, "--driver", "hyperopt"], GOOD, ("hyperopt",))
case("flag-study-dotdot", [*SEARCH, "--study", "../x"], GOOD, ("--study", "../x"))
case("flag-study-escape", [*SEARCH, "--study", "a\x1b[2Jb"], GOOD, ("--study", "\\x1b"))
case("flag-study-hidden", [*SEARCH, "--study", ".hidden"], GOOD, ("--study",))
case("flag-study-empty", [*SEARCH, "--study", ""], GOOD, ("--study",))
case("flag-study-newline", [*SEARCH, "--study", "a\nb"], GOOD, ("--study", "'a\\nb'"))
case("flag-study-bidi", [*SEARCH, "--study", "a\u202eb"], GOOD, ("--study", "\\u202e"))
case(
    "flag-runs-is-file",
    [*SEARCH, "--runs", "runsfile"],
    {**GOOD, "runsfile": "x"},
    ("runsfile", "--runs"),
)
case(
    "flag-enqueue-missing", [*SEARCH, "--enqueue", "known.yaml"], GOOD, ("known.yaml", "not found")
)
case(
    "flag-enqueue-duplicate",
    [*SEARCH, "--enqueue", "known.yaml"],
    {**GOOD, "known.yaml": "- {train.learning_rate: 0.001, train.learning_rate: 0.002}\n"},
    ("known.yaml", "duplicate key"),
)
case(
    "flag-enqueue-not-list",
    [*SEARCH, "--enqueue", "known.yaml"],
    {**GOOD, "known.yaml": "train.learning_rate: 0.001\n"},
    ("known.yaml", "list"),
)
case(
    "flag-enqueue-unknown-param",
    [*SEARCH, "--enqueue", "known.yaml"],
    {**GOOD, "known.yaml": "- {train.weight_decay: 0.1}\n"},
    ("known.yaml", "train.weight_decay"),
)
case(
    "flag-enqueue-outside",
    [*SEARCH, "--enqueue", "known.yaml"],
    {**GOOD, "known.yaml": "- {train.learning_rate: 5}\n"},
    ("known.yaml", "train.learning_rate"),
)
case(
    "flag-enqueue-bomb",
    [*SEARCH, "--enqueue", "known.yaml"],
    {**GOOD, "known.yaml": alias_bomb()},
    ("known.yaml", "aliases"),
)
case("flag-address-not-ray", [*SEARCH, "--address", "auto"], GOOD, ("--address",))
case(
    "flag-tracking-uri-scheme",
    [*SEARCH[:-2], "--quiet", "--tracking-uri", "foo://bar"],
    GOOD,
    ("foo://bar", "--tracking-uri"),
)
case("flag-objective-format", [*SEARCH, "--objective", "no_colon"], GOOD, ("no_colon",))
case(
    "flag-objective-missing-module",
    [*SEARCH, "--objective", "no_such_module_x:f"],
    GOOD,
    ("no_such_module_x",),
)
case("flag-nproc-zero", [*TRAIN_EXP, "--nproc", "0"], {}, ("--nproc",))
case("flag-atol-nan", ["export", "st", "--onnx", "--atol", "nan"], {}, ("--atol",))
case("flag-atol-negative", ["export", "st", "--onnx", "--atol", "-1"], {}, ("--atol",))
case("flag-atol-inf", ["export", "st", "--onnx", "--atol", "inf"], {}, ("--atol",))
case("flag-export-no-format", ["export", "st"], {}, ("--onnx",))
case(
    "flag-export-out-suffix",
    ["export", "runs/st", "--onnx", "--no-track", "--out", "model.txt"],
    {**study(), "runs/st/best/best.pt": checkpoint()},
    ("model.txt", "--out"),
)
case(
    "flag-export-out-folder",
    ["export", "runs/st", "--onnx", "--no-track", "--out", "outdir.onnx"],
    {**study(), "runs/st/best/best.pt": checkpoint(), "outdir.onnx": None},
    ("outdir.onnx", "--out"),
)
case(
    "flag-export-out-under-file",
    ["export", "runs/st", "--onnx", "--no-track", "--out", "afile/m.onnx"],
    {**study(), "runs/st/best/best.pt": checkpoint(), "afile": "x"},
    ("afile", "--out"),
)
case("flag-export-no-study", ["export", "nothere", "--onnx"], {}, ("nothere",))
case("flag-best-no-study", ["best", "nothere"], {}, ("nothere", "study.yaml"))
case("flag-status-no-study", ["status", "nothere"], {}, ("nothere", "study.yaml"))
case(
    "flag-status-runs-file", ["status", "x", "--runs", "runsfile"], {"runsfile": "x"}, ("runsfile",)
)
case("flag-evaluate-missing", ["evaluate", "nope.pt"], {}, ("nope.pt", "not found"))
case("flag-pipeline-stage", ["pipeline", "deploy"], {}, ("invalid choice",))
case("flag-pipeline-no-params", ["pipeline", "search"], {}, ("params.yaml", "not found"))

# ----------------------------------------------------------------------------- checkpoints


def checkpoint_case(name: str, content: Content, *names: str, owner: str = "") -> None:
    """The same damaged file given to evaluate, to export (as a study's best) and to --resume."""
    case(f"ckpt-evaluate-{name}", ["evaluate", "c.pt"], {"c.pt": content}, ("c.pt", *names), owner)
    case(
        f"ckpt-export-{name}",
        ["export", "runs/st", "--onnx", "--no-track"],
        {**study(), "runs/st/best/best.pt": content},
        ("runs/st/best/best.pt", *names),
        owner,
    )
    case(
        f"ckpt-resume-{name}",
        [*TRAIN_EXP, "--resume"],
        {"o/checkpoints/last.pt": content},
        ("o/checkpoints/last.pt", *names),
        owner,
    )


checkpoint_case("garbage", b"not a checkpoint at all", "not a readable runner checkpoint")
checkpoint_case("empty", b"", "not a readable runner checkpoint")
checkpoint_case("truncated", truncated_checkpoint, "not a readable runner checkpoint")
checkpoint_case("zip-bomb", zip_bomb, "compressed")
checkpoint_case("forged-size", forged_sizes, "declares")
checkpoint_case("legacy-pickle", legacy_pickle, "not a readable runner checkpoint")
checkpoint_case(
    "foreign", checkpoint(format="someone-else"), "not a checkpoint written by the hpo runner"
)
checkpoint_case("version", checkpoint(version=99), "version")
checkpoint_case("no-model", checkpoint(model=None), "(model)")
checkpoint_case("model-is-list", checkpoint(model=[1, 2]), "(model)")
checkpoint_case("no-task", checkpoint(config={"name": "x"}), "config.task")
checkpoint_case("not-weights-only", checkpoint(extra=Path("/")), "not a readable runner checkpoint")
case("ckpt-evaluate-folder", ["evaluate", "c.pt"], {"c.pt": None}, ("c.pt", "not a file"))
for tool, argv, path, extra in (
    ("evaluate", ["evaluate", "c.pt"], "c.pt", {}),
    ("export", ["export", "runs/st", "--onnx", "--no-track"], "runs/st/best/best.pt", study()),
    ("quantize", ["quantize", "c.pt", "--no-track"], "c.pt", {}),
):
    case(
        f"ckpt-{tool}-other-model",
        argv,
        {**extra, path: checkpoint(model=other_model_weights())},
        (path, "another model"),
    )
    case(
        f"ckpt-{tool}-bad-config",
        argv,
        {**extra, path: lambda: checkpoint(config=config_with(train__learning_rate=-1.0))()},
        (path, "train.learning_rate"),
    )
    case(
        f"ckpt-{tool}-bad-tokenizer",
        argv,
        {**extra, path: checkpoint(tokenizer="{not json")},
        (path, "damaged"),
    )
case(
    "ckpt-resume-no-optimizer",
    [*TRAIN_EXP, "--resume"],
    {"o/checkpoints/last.pt": checkpoint(optimizer=None)},
    ("last.pt", "(optimizer)"),
)
case("ckpt-resume-missing", [*TRAIN_EXP, "--resume"], {}, ("o/checkpoints/last.pt", "not found"))

# ----------------------------------------------------------------------------- pretrained folders

PRETRAINED = [*TRAIN_EXP, "-o", "model.pretrained=pre"]
case("pretrained-not-folder", PRETRAINED, {"pre": "a file"}, ("pre", "model.pretrained"))
case("pretrained-no-config", PRETRAINED, {"pre": None}, ("pre", "model.pretrained"))
case(
    "pretrained-config-not-json",
    PRETRAINED,
    pretrained_config("{"),
    ("pre/config.json", "model.pretrained"),
)
case(
    "pretrained-config-list",
    PRETRAINED,
    pretrained_config("[]"),
    ("pre/config.json", "model.pretrained"),
)
case(
    "pretrained-config-no-type",
    PRETRAINED,
    pretrained_config("{}"),
    ("pre/config.json", "model.pretrained"),
)
case(
    "pretrained-config-unknown-type",
    PRETRAINED,
    pretrained_config('{"model_type": "nope"}'),
    ("pre/config.json", "model.pretrained"),
)
case(
    "pretrained-config-field-type",
    PRETRAINED,
    pretrained_config('{"model_type": "gpt2", "n_embd": "x"}'),
    ("pre/config.json", "model.pretrained"),
)
case(
    "pretrained-config-not-utf8",
    PRETRAINED,
    pretrained_config(b'{"model_type": "gpt2", "x": "\xe9"}'),
    ("pre/config.json", "model.pretrained"),
)
case(
    "pretrained-config-huge",
    PRETRAINED,
    pretrained_config('{"model_type": "gpt2"}' + " " * 1_100_000),
    ("pre/config.json", "1 MB"),
)
case(
    "pretrained-no-weights",
    PRETRAINED,
    pretrained_config('{"model_type": "gpt2"}', weights=False),
    ("pre", "weights", "model.pretrained"),
)

# ----------------------------------------------------------------------------- damaged studies

for tool in ("status", "best"):
    argv = [tool, "st"]
    case(
        f"study-{tool}-yaml-syntax",
        argv,
        study("study: [\n"),
        ("runs/st/study.yaml",),
        owner="study-store",
    )
    case(
        f"study-{tool}-yaml-list",
        argv,
        study("- a\n"),
        ("runs/st/study.yaml",),
        owner="study-store",
    )
    case(
        f"study-{tool}-yaml-duplicate",
        argv,
        study(STUDY_YAML + "study: other\n"),
        ("runs/st/study.yaml", "duplicate key"),
        owner="study-store",
    )
    case(
        f"study-{tool}-yaml-no-space",
        argv,
        study("study: st\ndriver: optuna\n"),
        ("runs/st/study.yaml", "space"),
        owner="study-store",
    )
    case(
        f"study-{tool}-yaml-not-utf8",
        argv,
        study(STUDY_YAML.encode() + b"# \xe9\n"),
        ("runs/st/study.yaml", "UTF-8"),
        owner="study-store",
    )
    case(
        f"study-{tool}-yaml-bomb",
        argv,
        study(alias_bomb() + STUDY_YAML),
        ("runs/st/study.yaml", "aliases"),
        owner="study-store",
    )
    case(
        f"study-{tool}-trial-not-json",
        argv,
        study(trial="{"),
        ("runs/st/trials/0/trial.json",),
        owner="study-store",
    )
    case(
        f"study-{tool}-trial-list",
        argv,
        study(trial="[]"),
        ("runs/st/trials/0/trial.json",),
        owner="study-store",
    )
    case(
        f"study-{tool}-trial-fields",
        argv,
        study(trial='{"number": "zero"}'),
        ("runs/st/trials/0/trial.json",),
        owner="study-store",
    )
case(
    "study-best-none-complete",
    ["best", "st"],
    study(trial=TRIAL_JSON.replace('"complete"', '"failed"')),
    ("st", "no complete trial"),
)
case(
    "study-export-damaged-yaml-bad-checkpoint",
    ["export", "st", "--onnx", "--no-track"],
    {**study("study: [\n"), "runs/st/best/best.pt": b"x"},
    ("runs/st/best/best.pt", "not a readable runner checkpoint"),
)

# ----------------------------------------------------------------------------- params.yaml


def params_case(name: str, text: Content, *names: str, stage: str = "search") -> None:
    files = {"params.yaml": text, "space.yaml": GOOD_SPACE}
    case(f"params-{name}", ["pipeline", stage], files, ("params.yaml", *names))


params_case("seed-shell", params_yaml(search__seed="0; touch pwned #"), "(search.seed)")
params_case("study-shell", params_yaml(search__study="s; touch pwned #"), "(search.study)")
params_case("study-dotdot", params_yaml(search__study=".."), "(search.study)")
params_case("study-escape", params_yaml(search__study="a\x1b[2Jb"), "(search.study)", "\\x1b")
params_case("trials-zero", params_yaml(search__trials=0), "(search.trials)")
params_case("trials-text", params_yaml(search__trials="6"), "(search.trials)")
params_case("trials-bool", params_yaml(search__trials=True), "(search.trials)")
params_case("max-steps-negative", params_yaml(search__max_steps=-1), "(search.max_steps)")
params_case("seed-float", params_yaml(search__seed=1.5), "(search.seed)")
params_case("driver-unknown", params_yaml(search__driver="hyperopt"), "(search.driver)")
params_case("space-number", params_yaml(search__space=5), "(search.space)")
params_case("space-empty", params_yaml(search__space=""), "(search.space)")
params_case("track-text", params_yaml(search__track="yes"), "(search.track)")
params_case("unknown-key", params_yaml(search__triasl=3), "(search.triasl)")
params_case("missing-key", params_yaml(search__trials=...), "(search.trials)")
params_case(
    "experiment-control", params_yaml(prepare__experiment="exp\x07.yaml"), "(prepare.experiment)"
)
params_case(
    "train-max-steps-zero", params_yaml(train__max_steps=0), "(train.max_steps)", stage="train"
)
params_case("prepare-missing-section", "search: {}\n", "(prepare)", stage="prepare")
params_case("top-level-list", "- prepare\n", "mapping")
params_case("duplicate-key", params_yaml() + "train: {max_steps: 3}\n", "duplicate key 'train'")
params_case("yaml-syntax", "search: {trials: 1\n", "invalid YAML")
params_case("not-utf8", params_yaml().encode() + b"# \xe9\n", "UTF-8")
params_case("bomb", alias_bomb() + params_yaml(), "aliases")
params_case("seed-line-number", params_yaml(search__seed="x"), "params.yaml:9:")

# Rows also run as a real `hpo` process: one or two of each kind.
SUBPROCESS = (
    "space-duplicate-param",
    "space-billion-laughs",
    "space-grid-1e9-int-range",
    "space-param-key-escape",
    "config-lr-nan",
    "override-yaml-syntax",
    "flag-trials-zero",
    "flag-study-escape",
    "flag-atol-nan",
    "flag-tracking-uri-scheme",
    "ckpt-evaluate-zip-bomb",
    "ckpt-export-truncated",
    "ckpt-resume-garbage",
    "pretrained-config-not-json",
    "params-seed-shell",
)


# ----------------------------------------------------------------------------- the tests


def materialize(folder: Path, files: dict[str, Content]) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir(exist_ok=True)
            continue
        if callable(content):
            content = content()
        if isinstance(content, str):
            path.write_bytes(content.encode("utf-8", "surrogateescape"))
        else:
            path.write_bytes(content)


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def check_refusal(name: str, code: int, stderr: str, seconds: float, before: set, after: set):
    spec = CASES[name]
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2, f"exit {code}, stderr:\n{stderr[-2000:]}"
    assert "Traceback" not in stderr, stderr[-2000:]
    assert len(lines) == 1, f"{len(lines)} lines on stderr:\n{stderr[-2000:]}"
    assert lines[0].startswith("hpo: error: "), lines[0]
    assert "\x1b" not in stderr and "\u202e" not in stderr, "an escape sequence reached stderr"
    assert len(lines[0]) <= 1100, f"a {len(lines[0])}-character error line"
    for expected in spec.names:
        assert expected in lines[0], f"{expected!r} not named in: {lines[0]}"
    assert after == before, f"created {sorted(after - before)}, removed {sorted(before - after)}"
    assert seconds < MAX_SECONDS, f"took {seconds:.1f} s"


class RowTookTooLong(BaseException):
    """Raised by SIGALRM in a row that runs too long (BaseException: main() does not catch it)."""


def _too_long(signum, frame):
    raise RowTookTooLong(f"still running after {MAX_SECONDS + 10:.0f} s: not refused before work")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_exit_2(name, tmp_path, monkeypatch, capsys):
    spec = CASES[name]
    materialize(tmp_path, spec.files)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_DEBUG", raising=False)
    before = listing(tmp_path)
    capsys.readouterr()
    started = time.monotonic()
    signal.signal(signal.SIGALRM, _too_long)
    signal.alarm(int(MAX_SECONDS) + 10)  # a row wrongly accepted would train: stop it
    try:
        code = main(list(spec.argv))
    except SystemExit as exit_:  # only argparse's --help would; a refusal returns
        code = exit_.code
    finally:
        signal.alarm(0)
    seconds = time.monotonic() - started
    stderr = capsys.readouterr().err
    check_refusal(name, code, stderr, seconds, before, listing(tmp_path))


# the rows that take seconds each as a real process (most import torch before they refuse) run
# with the slow tests; the others, refused in a fraction of a second, in the quick loop too.
# Every row also runs in-process in the quick loop (test_bad_input_is_one_line_and_exit_2)
SLOW_ROWS = {
    "ckpt-evaluate-zip-bomb",
    "ckpt-export-truncated",
    "ckpt-resume-garbage",
    "pretrained-config-not-json",
    "flag-study-escape",
}


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_ROWS else n for n in SUBPROCESS],
)
def test_bad_input_as_a_real_hpo_process(name, tmp_path):
    spec = CASES[name]
    materialize(tmp_path, spec.files)
    before = listing(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "HPO_DEBUG"}
    started = time.monotonic()
    proc = subprocess.run(
        [str(HPO), *spec.argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    seconds = time.monotonic() - started
    check_refusal(name, proc.returncode, proc.stderr, seconds, before, listing(tmp_path))


def test_there_are_enough_rows():
    assert len(CASES) >= 150, len(CASES)


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "space.yaml").write_text(GOOD_SPACE + "params:\n" + LR)
    for argv, env in (
        ([str(HPO), "--debug", *SEARCH], {}),
        ([str(HPO), *SEARCH], {"HPO_DEBUG": "1"}),
    ):
        proc = subprocess.run(
            argv,
            cwd=tmp_path,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2
        assert "Traceback" in proc.stderr
        assert proc.stderr.rstrip().splitlines()[-1].startswith("hpo: error: space.yaml:")


def test_an_internal_error_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    # a bug is not the user's error: exit 1, one line that says how to see more. A bug is
    # injected into a command (there is no known one to trigger)
    import hpo.study_commands

    def buggy(args):
        raise KeyError("\x1b[2J" + "k" * 5000)

    monkeypatch.setattr(hpo.study_commands, "cmd_status", buggy)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HPO_DEBUG", raising=False)
    assert main(["status", "x"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hpo: internal error: KeyError: ")
    assert lines[0].endswith("(run with --debug for the traceback)") and "\x1b" not in lines[0]
    assert len(lines[0]) < 400
    with pytest.raises(KeyError):
        main(["--debug", "status", "x"])
