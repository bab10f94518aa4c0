"""A user's training script, as hpo search --command runs it in the command-trial tests.

Pure Python (no torch): `steps` steps of a synthetic loss that depends on the learning rate,
val_loss = (log10(lr) + 3)^2 + 1 / step, lowest at lr = 1e-3 and falling with the steps. Each
start appends {pid, argv, HPO_* environment} to attempts.jsonl in the trial's folder, so a test
sees what the trial received. --report api uses hpo.report; print writes `hpo: {...}` lines and
never imports hpo. A Ctrl-C (KeyboardInterrupt) saves the step reached to progress.json, which a
run with HPO_RESUME=1 continues from.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", default="")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--report", choices=["api", "print"], default="api")
    parser.add_argument("--fail-at", type=int, default=0, help="exit 1 at this step")
    parser.add_argument("--checkpoint", choices=["none", "best", "reported"], default="none")
    parser.add_argument("--stops-itself", action="store_true", help="check hpo.should_prune()")
    parser.add_argument(
        "--raise-when-pruned", action="store_true", help="hpo.raise_when_pruned(), then catch it"
    )
    args = parser.parse_args()
    here = Path(os.environ.get("HPO_TRIAL_DIR", "."))
    attempt = {
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "argv": sys.argv[1:],
        "tag": args.tag,
        **{k: v for k, v in os.environ.items() if k.startswith("HPO_")},
    }
    with open(here / "attempts.jsonl", "a") as file:
        file.write(json.dumps(attempt) + "\n")
    progress = here / "progress.json"
    first = 1
    if os.environ.get("HPO_RESUME") == "1" and progress.is_file():
        first = json.loads(progress.read_text())["step"] + 1
    if args.report == "api":
        import hpo

        if args.raise_when_pruned:
            hpo.raise_when_pruned()
    best = math.inf
    done = first - 1  # the last step reported
    try:
        for step in range(first, args.steps + 1):
            time.sleep(args.sleep)
            loss = (math.log10(args.lr) + 3) ** 2 + 1 / step
            if step == args.fail_at:
                print(f"diverged at step {step}: loss is nan")
                print("Traceback: the last words of the script", file=sys.stderr)
                return 1
            if loss < best and args.checkpoint != "none":
                best = loss
                folder = here / ("checkpoints/best" if args.checkpoint == "best" else "mine")
                folder.mkdir(parents=True, exist_ok=True)
                (folder / "model.txt").write_text(f"{step} {loss}\n")
                if args.checkpoint == "reported":
                    hpo.report_checkpoint(folder / "model.txt")
            if args.report == "api":
                try:
                    hpo.report(step, {"val_loss": loss, "train_loss": loss + 0.5})
                except hpo.TrialPruned:
                    print(f"pruned: hpo.report raised TrialPruned at step {step}")
                    (here / "raised_at").write_text(str(step))
                    return 0
                done = step
                if args.stops_itself and hpo.should_prune():
                    print(f"pruned: stopping by myself at step {step}")
                    (here / "stopped_itself").write_text(str(step))
                    return 0
            else:
                print("hpo: " + json.dumps({"step": step, "val_loss": loss}))
                done = step
            print(f"step {step} loss {loss:.4f}")
    except KeyboardInterrupt:
        progress.write_text(json.dumps({"step": done}))
        print(f"interrupted after step {done}: progress saved")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
