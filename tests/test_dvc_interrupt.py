"""Ctrl-C during `dvc repro`'s search stage: the search stops cleanly, dvc.lock is untouched,
and the next `dvc repro` continues the interrupted trial from its checkpoint.

The terminal sends SIGINT to the whole foreground process group: dvc ignores it while its
stage runs (dvc.stage.run), so the search decides; it exits 130 and dvc fails the stage.
"""

import json
import os
import signal
import subprocess
import time

import pytest
import yaml
from test_dvc_pipeline import BIN, project, run  # noqa: F401 (project is a fixture)

pytestmark = [pytest.mark.slow, pytest.mark.service]


def test_ctrl_c_during_repro_stops_the_search_and_the_next_repro_continues_it(project):  # noqa: F811
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["search"].update(trials=2, max_steps=120)  # long enough to be interrupted mid-trial
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(project, "dvc", "repro", "prepare")
    lock = (project / "dvc.lock").read_text()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    with open(project / "repro.err", "w") as err:
        repro = subprocess.Popen(
            ["dvc", "repro"],
            cwd=project,
            env=env,
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    study = project / "runs" / "pipeline"
    checkpoint = study / "trials" / "0" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.is_file():
        assert repro.poll() is None, (project / "repro.err").read_text()
        assert time.monotonic() < deadline, "no checkpoint of the first trial"
        time.sleep(0.05)
    os.killpg(repro.pid, signal.SIGINT)  # Ctrl-C at the terminal
    assert repro.wait(timeout=120) != 0, "dvc must fail the interrupted stage"
    stderr = (project / "repro.err").read_text()
    assert "Traceback" not in stderr and "exited with 130" in stderr, stderr
    assert (project / "dvc.lock").read_text() == lock, "an interrupted stage leaves dvc.lock"
    summary = json.loads((study / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["n_trials"]["interrupted"] == 1
    interrupted = json.loads((study / "trials" / "0" / "trial.json").read_text())
    assert interrupted["state"] == "interrupted"

    run(project, "dvc", "repro")
    trial = json.loads((study / "trials" / "0" / "trial.json").read_text())
    assert trial["state"] == "complete" and trial["params"] == interrupted["params"]
    assert trial["resumed_from_step"] > 0
    summary = json.loads((study / "summary.json").read_text())
    assert summary["n_trials"]["complete"] + summary["n_trials"]["pruned"] == 2
