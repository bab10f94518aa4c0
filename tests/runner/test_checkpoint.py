import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from runner.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from runner.errors import CheckpointError

WRITER = """
import sys, torch
from runner.checkpoint import save_checkpoint
path = sys.argv[1]
print("imported", flush=True)
step = 1
while True:
    save_checkpoint(path, {"step": step, "weights": torch.full((4_000_000,), float(step))})
    step += 1
"""


def test_checkpoint_loads_with_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 3, "w": torch.ones(2), "rng": capture_rng_state()})
    raw = torch.load(path, weights_only=True)
    assert raw["step"] == 3 and raw["format"] == "hpo-runner-checkpoint"


def test_rng_state_round_trips_for_python_numpy_and_torch(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"rng": capture_rng_state()})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    restore_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_a_file_that_is_not_ours_is_rejected(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a checkpoint written by the hpo runner"):
        load_checkpoint(foreign)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable runner checkpoint"):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")


@pytest.mark.slow
def test_a_writer_killed_mid_save_never_leaves_a_corrupt_checkpoint(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 0, "weights": torch.zeros(4_000_000)})
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    rng = random.Random(0)
    seen_steps = set()
    for _ in range(4):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], env=env, stdout=subprocess.PIPE, text=True
        )
        # past the imports (seconds on a busy machine), then somewhere inside one of its saves
        assert writer.stdout.readline() == "imported\n"
        time.sleep(0.2 + rng.random())
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        state = load_checkpoint(path)  # must never raise
        step = state["step"]
        assert torch.equal(state["weights"], torch.full((4_000_000,), float(step)))
        seen_steps.add(step)
    assert max(seen_steps) > 0, "the writer never completed a save: the test proved nothing"
    save_checkpoint(path, {"step": -1})
    assert not list(tmp_path.glob(".last.pt.*.tmp")), "stale temporary files were not swept"
