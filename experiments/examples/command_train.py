"""Your own training script, searched by `hpo search --command` (README: command trials).

It stands for any script: parse arguments, train step by step, evaluate. What hpo asks of it
is three calls (hpo.report, hpo.should_prune, and writing the best model to
$HPO_TRIAL_DIR/checkpoints/best) and, to continue after a Ctrl-C, reading its own state back
when HPO_RESUME=1. The "training" is a synthetic loss, lowest at lr 1e-3 and momentum 0.9, so
the example runs in seconds without torch:

    hpo search --space experiments/spaces/command_example.yaml
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import hpo

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=1e-3)
parser.add_argument("--momentum", type=float, default=0.9)
parser.add_argument("--steps", type=int, default=20)
args = parser.parse_args()

out = Path(os.environ.get("HPO_TRIAL_DIR", "."))  # the trial's folder (also the current one)
state = out / "state.json"
first = 1
if os.environ.get("HPO_RESUME") == "1" and state.is_file():  # rerun after a Ctrl-C
    first = json.loads(state.read_text())["step"] + 1

best = math.inf
for step in range(first, args.steps + 1):
    time.sleep(0.05)  # a training step
    val_loss = (math.log10(args.lr) + 3) ** 2 + (args.momentum - 0.9) ** 2 + 1 / step
    if val_loss < best:  # the best model so far: hpo promotes the best trial's to best/
        best = val_loss
        (out / "checkpoints" / "best").mkdir(parents=True, exist_ok=True)
        (out / "checkpoints" / "best" / "model.json").write_text(json.dumps({"step": step}))
    state.write_text(json.dumps({"step": step}))
    hpo.report(step, {"val_loss": val_loss})
    if hpo.should_prune():  # the pruner stopped this trial
        break
