"""Objectives: the runner as a search objective, and plain Python functions named module:function.

Example:
    >>> objective = RunnerObjective("experiments/lm_tiny.yaml", metric="val_loss", max_steps=100)
    >>> objective({"train.learning_rate": 3e-3}, reporter)   # reporter: hpo.drivers.base.TrialReporter
    4.61
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from hpo.drivers.base import TrialInterrupted, TrialPruned
from runner.config import TrialConfig, apply_overrides, config_from_dict, load_config, set_dotted
from runner.errors import ConfigError


class TrialFailed(RuntimeError):
    """The runner ended the trial as failed; the message is its reason."""


class RunnerObjective:
    """Runs one training trial per call: sampled params become dotted config overrides.

    The trial trains in the reporter's folder (runs/<study>/trials/<n>/). The value is the
    best evaluation of `metric` (the one the best checkpoint holds), not the last. A reporter
    with a `resume_checkpoint` path (an interrupted trial's own last.pt on --resume, Ray's PBT
    exploit) starts from that checkpoint. A trial the runner ended interrupted (Ctrl-C,
    SIGTERM: it saved last.pt) raises TrialInterrupted, so the search stops instead of going on.
    Picklable, so worker processes and Ray actors can run it.
    """

    def __init__(
        self,
        experiment: str | Path,
        metric: str = "val_loss",
        greater_is_better: bool | None = None,
        max_steps: int | None = None,
        overrides: Sequence[str] = (),
    ) -> None:
        # Ray runs trials in other working directories: paths are resolved here, once
        self.base_dir = Path.cwd()
        self.experiment = str(Path(experiment).resolve())
        # fail on a bad experiment before any trial; nproc: processes (GPUs) per trial
        self.nproc = load_config(self.experiment, list(overrides)).train.nproc
        self.metric = metric
        self.greater_is_better = greater_is_better
        self.max_steps = max_steps
        self.overrides = list(overrides)

    def config_for(self, params: Mapping[str, Any], output_dir: str | Path) -> TrialConfig:
        """The frozen TrialConfig of one trial: experiment, overrides, then the sampled params."""
        raw = yaml.safe_load(Path(self.experiment).read_text()) or {}
        merged = apply_overrides(raw, self.overrides, self.experiment)
        for key, value in params.items():
            set_dotted(merged, key, value, "search space")
        for key in ("data.path", "data.cache_dir", "model.pretrained"):
            section, name = key.split(".")
            value = merged.get(section, {}).get(name)
            if isinstance(value, str) and not Path(value).expanduser().is_absolute():
                set_dotted(merged, key, str(self.base_dir / value), "search")
        set_dotted(merged, "output_dir", str(output_dir), "search")
        set_dotted(merged, "eval.metric_for_best_model", self.metric, "search space objective")
        if self.greater_is_better is not None:
            set_dotted(merged, "eval.greater_is_better", self.greater_is_better, "search")
        if self.max_steps is not None:
            set_dotted(merged, "train.max_steps", self.max_steps, "search space budget")
        return config_from_dict(merged, source=self.experiment)

    def __call__(self, params: Mapping[str, Any], reporter) -> dict[str, float]:
        from runner import run_trial

        config = self.config_for(params, reporter.dir)
        resume_from = getattr(reporter, "resume_checkpoint", None)
        if resume_from:
            last = Path(reporter.dir) / "checkpoints" / "last.pt"
            last.parent.mkdir(parents=True, exist_ok=True)
            if Path(resume_from).resolve() != last.resolve():
                shutil.copyfile(resume_from, last)
        if config.train.nproc > 1:  # DDP under torchrun; rank 0 reports through this process
            from hpo.launch import run_distributed_trial

            result = run_distributed_trial(config, reporter, resume=bool(resume_from))
        else:
            result = run_trial(config, reporter, resume=bool(resume_from))
        if result.status == "interrupted":
            raise TrialInterrupted(result.reason)
        if result.status == "pruned":
            raise TrialPruned(result.reason)
        if result.status != "completed" or result.best_value is None:
            raise TrialFailed(result.reason or f"trial ended {result.status} without an evaluation")
        return dict(result.best_metrics)


def load_function(spec: str):
    """Import `module:function` (e.g. `mypkg.objectives:branin`) for --objective."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"--objective {spec!r}: expected module:function, e.g. mypkg.obj:loss")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"--objective {spec!r}: cannot import {module_name!r} ({err})") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ConfigError(f"--objective {spec!r}: {module_name} has no callable {attr!r}")
    return function
