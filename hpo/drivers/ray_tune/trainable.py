"""What runs inside the Ray worker: one trial of the objective, its reports and checkpoints.

What Ray sees of a trial: one tune.report per evaluation (a report holding the objective metric)
with its step and every report since the previous one, then a last one with done=True when the
objective returns (hpo_state: complete). A trial Ray ends before that was stopped by its
scheduler or the timeout: it ends pruned; so does one that raised TrialPruned, or returned, after
should_stop() said Optuna's pruner wants it stopped (searchers.py). An exception is Ray's trial error: retried
max_failures times, then failed.

Checkpoints: with pbt, or max_failures > 0, each evaluation hands the runner's
checkpoints/last.pt to Ray, which keeps it in the study's storage (runs/<study>/ray/); a trial
Ray restarts from a checkpoint (PBT's exploit, a retry after an error or a lost node, a
restored study) resumes from it through reporter.resume_checkpoint, and an exploit is logged to
trials/<n>/exploits.jsonl. A trial restarted without one resumes from its own last.pt if it has
one. Each start of a trial in a Ray worker adds a line to trials/<n>/ray_attempts.jsonl (and to
its output.log): the Ray node id and IP, the pid, and the checkpoint it resumed from.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import shutil
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo.drivers.base import ObjectiveFunction, TrialPruned, TrialRecord
from hpo.drivers.ray_tune.domains import trial_params
from hpo.drivers.ray_tune.searchers import PRUNE_FILE
from hpo.objective_call import objective_result
from hpo.quiet import apply_inherited
from hpo.space import SearchSpace
from hpo.study import INTERRUPTED, trial_dir
from hpo.study_files import load_trial
from hpo.trial_processes import redirect_output


@dataclass(frozen=True)
class TrialSetup:
    """What every trial of the study shares (sent once to Ray's object store)."""

    objective: ObjectiveFunction
    space: SearchSpace
    study_dir: str  # absolute: Ray workers do not run in the driver's directory
    checkpoints: bool  # hand the runner's last.pt to Ray at each evaluation (pbt, retries)
    optuna_prunes: bool = False  # Optuna's pruner decides (searchers.py), not a Ray scheduler


class _RayReporter:
    """The TrialReporter inside a Ray trial: one tune.report per evaluation of the metric."""

    def __init__(
        self, number: int, directory: Path, params: dict[str, Any], setup: TrialSetup
    ) -> None:
        self.number, self.dir, self.params = number, directory, params
        self.metric = setup.space.objective.metric
        self.max_steps = setup.space.budget.max_steps
        self.checkpoints = setup.checkpoints
        # Ray's schedulers stop a trial at max_t: its last evaluation rides with the end instead
        self.sends_last = setup.optuna_prunes
        self.pruned = False  # should_stop() said so: the trial ends pruned
        self.resume_checkpoint: str | None = None  # RunnerObjective starts from it when set
        self.steps = 0
        self.pending: list[list[Any]] = []  # [step, metrics] not yet sent to Ray

    def report(self, step: int, metrics: Mapping[str, float]) -> None:
        plain = {str(k): float(v) for k, v in metrics.items() if isinstance(v, numbers.Real)}
        self.steps = max(self.steps, int(step))
        self.pending.append([int(step), plain])
        # The last evaluation rides with the complete report: at max_t ASHA and HyperBand stop
        # a trial, and the objective's value would never reach Ray.
        last = self.max_steps is not None and step >= self.max_steps
        if self.metric in plain and (self.sends_last or not last):
            self.send(plain, checkpoint=self.checkpoints)

    def should_stop(self) -> bool:
        # Ray's schedulers stop a trial themselves (its tune.report does not return); Optuna's
        # pruner leaves the file, written before the report above returned (searchers.py)
        self.pruned = self.pruned or (self.dir / PRUNE_FILE).exists()
        return self.pruned

    def complete(self, values: dict[str, float]) -> None:
        """The trial's end: what it returned (every result Ray sees holds the metric); done:
        no scheduler acts on it."""
        ray_values = {**values, self.metric: values.get(self.metric, math.nan)}
        self.send(ray_values, done=True, hpo_state="complete", hpo_values=json.dumps(values))

    def send(self, metrics: Mapping[str, float], checkpoint: bool = False, **extra: Any) -> None:
        from ray import tune

        result = {**metrics, "step": self.steps, "hpo_reports": json.dumps(self.pending), **extra}
        self.pending = []
        last = self.dir / "checkpoints" / "last.pt"
        if not checkpoint or not last.is_file():
            tune.report(result)
            return
        with tempfile.TemporaryDirectory(prefix="hpo-ckpt-") as folder:
            try:  # the runner replaces last.pt by rename, so a link keeps this one
                os.link(last, Path(folder) / "last.pt")
            except OSError:
                shutil.copyfile(last, Path(folder) / "last.pt")
            (Path(folder) / "hpo.json").write_text(
                json.dumps({"trial": self.number, "step": self.steps})
            )
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))


def train_trial(config: dict[str, Any], setup: TrialSetup) -> None:
    """Ray's function trainable: one trial of the objective, in runs/<study>/trials/<n>/."""
    from ray import tune

    number = int(tune.get_context().get_trial_name())
    directory = trial_dir(Path(setup.study_dir), number)
    directory.mkdir(parents=True, exist_ok=True)
    redirect_output(directory / "output.log")
    apply_inherited()  # --quiet: the study's process silenced third-party warnings and loggers
    params = trial_params(setup.space, config)
    reporter = _RayReporter(number, directory, params, setup)
    settled = _settled_record(directory)
    if settled is not None:  # it ended before Ray last saved its state: not run twice
        if settled.state == "complete":
            metrics = [o.metric for o in setup.space.objectives]
            reporter.complete(dict(zip(metrics, settled.values, strict=True)))
        return
    checkpoint = tune.get_checkpoint()
    with contextlib.ExitStack() as stack:
        saved = None  # the Ray checkpoint's trial and step
        if checkpoint is not None:
            folder = Path(stack.enter_context(checkpoint.as_directory()))
            reporter.resume_checkpoint = str(folder / "last.pt")
            saved = json.loads((folder / "hpo.json").read_text())
            if saved["trial"] != number:  # PBT's exploit: the donor's weights, this trial's params
                _log_exploit(directory / "exploits.jsonl", saved, params)
        elif (
            directory / "checkpoints" / "last.pt"
        ).is_file():  # a retry, a paused or restored trial
            reporter.resume_checkpoint = str(directory / "checkpoints" / "last.pt")
        _log_attempt(directory, number, reporter.resume_checkpoint, saved)
        try:
            value = setup.objective(dict(params), reporter)
        except TrialPruned:
            return  # no complete report: it ends pruned
        except Exception:
            (directory / "traceback.txt").write_text(traceback.format_exc())
            raise  # Ray's trial error: retried max_failures times, then failed
    if reporter.pruned:  # returned after should_stop() said True: pruned, as under optuna
        return
    outcome = objective_result(value)  # what the local loop makes of it
    if outcome.state == "failed":
        raise TypeError(outcome.reason)  # Ray's trial error
    values = outcome.result
    reporter.complete(values if isinstance(values, dict) else {reporter.metric: values})


def _log_attempt(
    directory: Path, number: int, resume_checkpoint: str | None, saved: dict[str, Any] | None
) -> None:
    """One line in ray_attempts.jsonl, and in output.log, each time Ray starts the trial."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    line = {
        "node_id": node_id,
        "node_ip": ray.util.get_node_ip_address(),
        "pid": os.getpid(),
        "started": time.time(),
        "resume_checkpoint": resume_checkpoint,
        "resumed_at_step": None if saved is None else saved["step"],
    }
    with open(directory / "ray_attempts.jsonl", "a") as log:
        log.write(json.dumps(line) + "\n")
    where = f"trial {number} on Ray node {node_id} ({line['node_ip']}, pid {line['pid']})"
    since = "" if resume_checkpoint is None else f", resuming from {resume_checkpoint}"
    print(f"hpo: {where}{since}", flush=True)


def _log_exploit(path: Path, donor: dict[str, Any], params: dict[str, Any]) -> None:
    line = {"step": donor["step"], "from_trial": donor["trial"], "params": params}
    logged = [json.loads(text) for text in path.read_text().splitlines()] if path.exists() else []
    if not logged or (logged[-1]["step"], logged[-1]["from_trial"]) != (
        line["step"],
        line["from_trial"],
    ):
        with open(path, "a") as log:  # not again when a paused trial resumes from the same one
            log.write(json.dumps(line) + "\n")


def _settled_record(directory: Path) -> TrialRecord | None:
    path = directory / "trial.json"
    record = load_trial(path) if path.is_file() else None
    if record is None or record.state in ("running", "interrupted") or record.reason == INTERRUPTED:
        return None
    return record
