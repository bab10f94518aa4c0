"""Trials on several processes: torchrun with 2 CPU ranks on gloo, against one process.

Tolerance: the 2-rank loss at each step is the mean of two half-batch means and DDP averages the
gradients in buckets, so float sums run in another order than in one process with the doubled
batch. The tests allow rel 1e-4 on losses (1e-3 on grad norms); measured over 30 AdamW steps of
the tiny model: at most 1.7e-7 on the train loss, 1.1e-7 on the grad norm, 4e-8 on val_loss.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

import hpo.launch
from hpo.launch import (
    default_gpus_per_trial,
    devices_for_trials,
    rank_env,
    run_distributed_trial,
    torchrun_command,
    train_command,
)
from runner import run_trial
from runner.checkpoint import load_checkpoint
from runner.config import config_to_dict
from runner.errors import ConfigError, UserInputError
from runner.metrics_log import read_metrics

LOSS_RTOL = 1e-4

# Each rank notes every file it opens for writing, creates or renames inside the trial folder.
RANK_SCRIPT = """
import json, os, sys

from runner import load_config, run_trial

config_path, trial, report = sys.argv[1:4]
trial = os.path.abspath(trial)
written = []


def note(event, args):
    path = None
    if event == "open" and isinstance(args[0], (str, bytes)):
        mode, flags = args[1] or "", args[2] or 0
        if any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            path = args[0]
    elif event in ("os.rename", "os.replace", "os.mkdir") and isinstance(args[0], (str, bytes)):
        path = args[1] if event != "os.mkdir" else args[0]
    if path is not None and os.path.abspath(os.fsdecode(path)).startswith(trial):
        written.append(os.path.relpath(os.fsdecode(path), trial))


sys.addaudithook(note)
run_trial(load_config(config_path))
with open(os.path.join(report, f"written-{os.environ['RANK']}.json"), "w") as handle:
    json.dump(written, handle)
"""


def small(tiny_lm_config, output_dir, *overrides):
    return tiny_lm_config(
        f"output_dir={output_dir}",
        "train.max_steps=20",
        "eval.max_eval_batches=0",  # the whole val set: the same for any batch size
        *overrides,
    )


def train_records(output_dir, kind="train"):
    return read_metrics(output_dir / "metrics.jsonl", kind)


@pytest.mark.slow  # a torchrun launch: 3 Python processes that import torch
def test_two_gloo_ranks_train_like_one_process_with_the_global_batch(tiny_lm_config, tmp_path):
    two = small(tiny_lm_config, tmp_path / "two", "train.nproc=2")
    (tmp_path / "two.yaml").write_text(yaml.safe_dump(config_to_dict(two)))
    (tmp_path / "rank_script.py").write_text(RANK_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    env["OMP_NUM_THREADS"] = "1"
    command = torchrun_command(
        2, "rank_script", [str(tmp_path / "two.yaml"), str(tmp_path / "two"), str(tmp_path)]
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    one = run_trial(small(tiny_lm_config, tmp_path / "one", "train.per_device_train_batch_size=16"))

    a, b = train_records(tmp_path / "two"), train_records(tmp_path / "one")
    assert [r["step"] for r in a] == [r["step"] for r in b] == list(range(1, 21))
    for x, y in zip(a, b, strict=True):
        assert x["loss"] == pytest.approx(y["loss"], rel=LOSS_RTOL), x["step"]
        assert x["grad_norm"] == pytest.approx(y["grad_norm"], rel=10 * LOSS_RTOL), x["step"]
    evals = [r["val_loss"] for r in train_records(tmp_path / "two", "eval")]
    assert evals == pytest.approx(
        [r["val_loss"] for r in train_records(tmp_path / "one", "eval")], rel=LOSS_RTOL
    )
    assert json.loads((tmp_path / "two" / "result.json").read_text())[
        "best_value"
    ] == pytest.approx(one.best_value, rel=LOSS_RTOL)
    # rank 0 wrote the trial's files; rank 1 wrote nothing at all
    assert {"metrics.jsonl", "config.yaml"} <= set(
        json.loads((tmp_path / "written-0.json").read_text())
    )
    assert json.loads((tmp_path / "written-1.json").read_text()) == []
    saved = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")
    assert len(saved["rank_rng"]) == 2
    assert not torch.equal(saved["rank_rng"][0]["torch"], saved["rank_rng"][1]["torch"])


@pytest.mark.slow  # two torchrun launches
def test_search_trial_on_two_ranks_reports_is_pruned_and_resumes(tiny_lm_config, stop_at, tmp_path):
    whole = run_trial(
        small(tiny_lm_config, tmp_path / "whole", "train.per_device_train_batch_size=16")
    )
    config = small(tiny_lm_config, tmp_path / "trial", "train.nproc=2")
    reporter = stop_at(10)

    stopped = run_distributed_trial(config, reporter)
    assert stopped.status == "pruned" and stopped.steps == 10, stopped.reason
    steps = [step for step, metrics in reporter.reports if "loss" in metrics]
    assert steps == list(range(1, 11)), "rank 0 relays every train report, and only rank 0"
    assert [step for step, metrics in reporter.reports if "val_loss" in metrics] == [10]

    resumed = run_distributed_trial(config, stop_at(10**9), resume=True)
    assert resumed.status == "complete" and resumed.steps == 20, resumed.reason
    losses = [r["loss"] for r in train_records(tmp_path / "trial")]
    assert losses == pytest.approx(
        [r["loss"] for r in train_records(tmp_path / "whole")], rel=LOSS_RTOL
    )
    assert resumed.best_value == pytest.approx(whole.best_value, rel=LOSS_RTOL)


# Stands in for torchrun in the launcher's failure tests: rank 0 without torch, so it starts at once.
FAKE_RANK_0 = """
import os, sys
from multiprocessing.connection import Client

if sys.argv[1] == "error":
    host, port = os.environ["HPO_RANK0_ADDRESS"].rsplit(":", 1)
    with Client((host, int(port)), authkey=bytes.fromhex(os.environ["HPO_RANK0_AUTHKEY"])) as conn:
        config = conn.recv()
        conn.send(("error", "ConfigError: train.device: " + config["train"]["device"]))
sys.exit(3)
"""


@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [
        ("error", "rank 0 raised ConfigError: train.device: cpu"),
        ("exit", "torchrun exited with code 3 before rank 0 finished"),
    ],
)
def test_a_failed_launch_fails_the_trial_with_the_reason(
    tiny_lm_config, stop_at, tmp_path, monkeypatch, behaviour, reason
):
    script = tmp_path / "fake_rank_0.py"
    script.write_text(FAKE_RANK_0)
    monkeypatch.setattr(
        hpo.launch,
        "torchrun_command",
        lambda nproc, module, args=(): [sys.executable, str(script), behaviour],
    )
    config = tiny_lm_config("train.nproc=2", "train.device=cpu")
    result = run_distributed_trial(config, stop_at(10))
    assert result.status == "failed"
    assert result.reason.startswith(reason)


def test_nproc_above_one_outside_torchrun_is_a_config_error(tiny_lm_config, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ConfigError, match="train.nproc=2.*torchrun"):
        run_trial(tiny_lm_config("train.nproc=2"))


def test_train_command_reruns_hpo_train_under_torchrun():
    command = train_command(
        2, "exp.yaml", ["train.nproc=2", "output_dir=out"], resume=True, quiet=True
    )
    assert command[:6] == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
    ]
    assert command[6:] == [
        "hpo.cli",
        "train",
        "--config",
        "exp.yaml",
        "-o",
        "train.nproc=2",
        "-o",
        "output_dir=out",
        "--resume",
        "--quiet",
    ]


def test_ranks_share_the_threads_of_their_trial():
    assert rank_env(2, {"OMP_NUM_THREADS": "8"})["OMP_NUM_THREADS"] == "4"
    assert rank_env(4, {"OMP_NUM_THREADS": "2"})["OMP_NUM_THREADS"] == "1"


def test_concurrent_trials_get_disjoint_gpus():
    slots = devices_for_trials(3, 2, ["0", "1", "2", "3", "4", "5", "6", "7"])
    assert slots == ["0,1", "2,3", "4,5"]
    names = [gpu for slot in slots for gpu in slot.split(",")]
    assert len(names) == len(set(names))


def test_gpus_are_named_as_cuda_visible_devices_names_them():
    assert devices_for_trials(2, 1, ["3", "GPU-5f1c"]) == ["3", "GPU-5f1c"]


def test_too_few_gpus_for_the_trials_is_a_clear_error():
    with pytest.raises(UserInputError, match="needs 6 GPUs, but 4 are visible"):
        devices_for_trials(3, 2, ["0", "1", "2", "3"])


def test_zero_gpus_per_trial_leaves_the_devices_shared():
    assert devices_for_trials(3, 0, []) == [None, None, None]


def test_by_default_trials_get_their_own_gpus_only_when_there_are_enough():
    gpus = ["0", "1", "2", "3"]
    assert default_gpus_per_trial(parallel=2, nproc=2, gpus=gpus) == 2
    assert default_gpus_per_trial(parallel=4, nproc=2, gpus=gpus) == 0
    assert default_gpus_per_trial(parallel=1, nproc=1, gpus=gpus) == 0
    assert default_gpus_per_trial(parallel=2, nproc=1, gpus=[]) == 0
