"""The YAHPO Gym LCBench surrogate as an hpo objective: one report per epoch, 52 epochs.

For benchmarks only: hpo and its users never need it. The surrogate (YAHPO Gym's LCBench
scenario, Apache-2.0: model.onnx, encoding.json, config_space.json) lives in
../shared/data/lcbench beside the repository, or where HPO_LCBENCH_DIR says. It is an MLP
trained on the learning curves of 2,000 configurations of a funnel-shaped MLP on each of 34
OpenML tasks; given a task, a configuration and an epoch it predicts that epoch's validation
accuracy (and five other targets), so a trial costs microseconds instead of minutes.

The objective follows hpo's `--objective module:function` contract:

    hpo search --space SPACE --objective bench/lcbench_surrogate.py:objective

with a fixed param `task` (an OpenML task id) and the searched params of SPACE_PARAMS. It
predicts all 52 epochs of a configuration in one call (cached per configuration), then reports
val_accuracy epoch by epoch and stops when the search says so (TrialPruned). Its value is the
last epoch's val_accuracy (percent, higher is better).

Input layout (from YAHPO Gym's BenchmarkSet._config_to_xs): x_cat int32 [n, 1] = the task's
code in encoding.json; x_cont float32 [n, 8] = epoch, batch_size, learning_rate, momentum,
weight_decay, num_layers, max_units, max_dropout, raw (the model scales them itself); output
float32 [n, 6] = time, val_accuracy, val_cross_entropy, val_balanced_accuracy,
test_cross_entropy, test_balanced_accuracy.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

EPOCHS = 52
METRIC = "val_accuracy"
DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "lcbench"
CONT_NAMES = (
    "epoch",
    "batch_size",
    "learning_rate",
    "momentum",
    "weight_decay",
    "num_layers",
    "max_units",
    "max_dropout",
)
# config_space.json's ranges, without the task and the epoch (the fidelity). The three whole
# numbers are searched as floats and rounded by the objective: Optuna's TPE spends half its
# time on the probability mass of integer values, which on 2 shared cores decided whether
# 10 tasks x 10 seeds fit in an hour; every contender sees the same space.
SPACE_PARAMS: dict[str, dict[str, Any]] = {
    "batch_size": {"type": "float", "low": 16, "high": 512, "log": True},
    "learning_rate": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
    "momentum": {"type": "float", "low": 0.1, "high": 0.99},
    "weight_decay": {"type": "float", "low": 1e-5, "high": 1e-1},
    "num_layers": {"type": "float", "low": 1, "high": 5},
    "max_units": {"type": "float", "low": 64, "high": 1024, "log": True},
    "max_dropout": {"type": "float", "low": 0.0, "high": 1.0},
}
WHOLE = ("batch_size", "num_layers", "max_units")
VAL_ACCURACY = 1  # column of the output


class SurrogateMissing(RuntimeError):
    """The surrogate's folder is not there; the message says where it was looked for."""


def data_dir() -> Path:
    return Path(os.environ.get("HPO_LCBENCH_DIR") or DEFAULT_DIR)


def check_data() -> Path:
    """The surrogate's folder, or SurrogateMissing with one line saying what is missing."""
    folder = data_dir()
    missing = [n for n in ("model.onnx", "encoding.json") if not (folder / n).is_file()]
    if missing:
        raise SurrogateMissing(
            f"{folder}: no {' or '.join(missing)}; this benchmark needs YAHPO Gym's LCBench "
            "surrogate there (or in HPO_LCBENCH_DIR); hpo itself never needs it"
        )
    return folder


@lru_cache(maxsize=1)
def _session() -> tuple[Any, dict[str, int]]:
    import onnxruntime

    folder = check_data()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1  # a 52-row batch: threads cost more than they save
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), sess_options=options)
    encoding = json.loads((folder / "encoding.json").read_text())["OpenML_task_id"]
    return session, encoding


def tasks() -> list[str]:
    """The 34 OpenML task ids of the surrogate, in config_space.json's order."""
    space = json.loads((check_data() / "config_space.json").read_text())
    task = next(h for h in space["hyperparameters"] if h["name"] == "OpenML_task_id")
    return list(task["choices"])


@lru_cache(maxsize=200_000)
def curve(task: str, config: tuple[float, ...]) -> tuple[float, ...]:
    """val_accuracy at epochs 1..52 of one configuration (values in SPACE_PARAMS' order)."""
    import numpy as np

    session, encoding = _session()
    if task not in encoding:
        raise ValueError(f"task {task!r} is not one of the surrogate's tasks")
    values = dict(zip(SPACE_PARAMS, config, strict=True))
    cont = np.empty((EPOCHS, len(CONT_NAMES)), dtype=np.float32)
    cont[:, 0] = np.arange(1, EPOCHS + 1)
    for column, name in enumerate(CONT_NAMES[1:], start=1):
        cont[:, column] = values[name]
    cat = np.full((EPOCHS, 1), encoding[task], dtype=np.int32)
    inputs = session.get_inputs()
    out = session.run(None, {inputs[0].name: cat, inputs[1].name: cont})[0]
    return tuple(float(v) for v in out[:, VAL_ACCURACY])


def objective(params: dict[str, Any], reporter: Any) -> float:
    """hpo's objective contract: val_accuracy reported at epochs 1..52; the last one returned."""
    from hpo.drivers.base import TrialPruned

    config = tuple(
        float(round(params[name]) if name in WHOLE else params[name]) for name in SPACE_PARAMS
    )
    accuracies = curve(str(params["task"]), config)
    for epoch, accuracy in enumerate(accuracies, start=1):
        reporter.report(epoch, {METRIC: accuracy})
        if epoch < EPOCHS and reporter.should_stop():
            raise TrialPruned(f"pruned at epoch {epoch}")
    return accuracies[-1]


def space_dict(task: str, seed: int, trials: int | None, steps_total: int | None) -> dict:
    """A space (as a space file's dict) searching one task with hpo's default driver options."""
    budget: dict[str, Any] = {"max_steps": EPOCHS}
    if trials is not None:
        budget["trials"] = trials
    if steps_total is not None:
        budget["max_steps_total"] = steps_total
    return {
        "objective": {"metric": METRIC, "direction": "maximize"},
        "budget": budget,
        "driver": {"seed": seed},
        "params": {"task": {"type": "fixed", "value": task}, **SPACE_PARAMS},
    }
