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

from hpo.drivers.base import TrialInterrupted, TrialPruned
from runner.config import (
    TrialConfig,
    apply_overrides,
    config_from_dict,
    load_config,
    resolve_paths,
    set_dotted,
)
from runner.errors import ConfigError
from runner.yaml_io import excerpt, load_yaml_file


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
        # Ray runs trials in other working directories: paths are resolved here, once. Paths in
        # the experiment file are relative to its folder; paths in -o overrides and in params
        # (a space file's are already absolute, see hpo.space.loading) to the current folder.
        self.base_dir = Path.cwd()
        self.experiment = str(Path(experiment).resolve())
        self._raw: dict[str, Any] | None = None
        # fail on a bad experiment before any trial; nproc: processes (GPUs) per trial
        self.nproc = load_config(self.experiment, list(overrides)).train.nproc
        self.metric = metric
        self.greater_is_better = greater_is_better
        self.max_steps = max_steps
        self.overrides = list(overrides)

    def config_for(self, params: Mapping[str, Any], output_dir: str | Path) -> TrialConfig:
        """The frozen TrialConfig of one trial: experiment, overrides, then the sampled params."""
        if self._raw is None:  # read once: every trial (and the check of the space) uses it
            raw = load_yaml_file(self.experiment, "experiment file") or {}
            if not isinstance(raw, dict):
                raise ConfigError(f"{self.experiment}: expected a mapping of config keys")
            self._raw = raw
        raw = self._raw
        merged = apply_overrides(
            resolve_paths(raw, Path(self.experiment).parent), self.overrides, self.experiment
        )
        for key, value in params.items():
            set_dotted(merged, key, value, "search space")
        merged = resolve_paths(merged, self.base_dir)
        set_dotted(merged, "output_dir", str(output_dir), "search")
        set_dotted(merged, "eval.metric_for_best_model", self.metric, "search space objective")
        if self.greater_is_better is not None:
            set_dotted(merged, "eval.greater_is_better", self.greater_is_better, "search")
        if self.max_steps is not None:
            set_dotted(merged, "train.max_steps", self.max_steps, "search space budget")
        return config_from_dict(merged, source=self.experiment)

    def total_steps(self, params: Mapping[str, Any]) -> int:
        """The steps a trial with these params trains (the live view's step/total)."""
        return self.config_for(params, self.base_dir).train.max_steps

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
        if result.status != "complete" or result.best_value is None:
            raise TrialFailed(result.reason or f"trial ended {result.status} without an evaluation")
        return dict(result.best_metrics)


def load_function(spec: str, flag: str = "--objective"):
    """The objective function named by `spec` (--objective), checked before any trial.

    spec is MODULE:FUNCTION, where MODULE is
    - a dotted module name (mypkg.objectives): imported from the installed packages, or from the
      current folder (searched last, as for `python -m`, so it never hides an installed module);
    - or a path to a .py file (./objectives.py, /abs/objectives.py, sub/obj.py): relative to the
      current folder; its folder is put on sys.path and the file imported by its name, so that
      worker processes (--parallel) import it the same way.
    FUNCTION must be a module-level Python function (def, not a builtin, class or lambda) that
    accepts the objective contract's two positional arguments (params, reporter), and must not
    come from the Python standard library (os:system, shutil:rmtree are refused).
    """
    import inspect
    import sys

    def refuse(problem: str) -> ConfigError:
        return ConfigError(f"{flag} {excerpt(spec)}: {problem}")

    module_name, _, attr = spec.rpartition(":")
    if not module_name or not attr:
        raise refuse("expected MODULE:FUNCTION or PATH.py:FUNCTION, e.g. mypkg.obj:loss")
    if module_name.endswith(".py") or "/" in module_name or "\\" in module_name:
        file = Path(module_name).expanduser().resolve()
        if not file.is_file() or file.suffix != ".py":
            raise refuse(f"{module_name} is not a Python file (relative to the current folder)")
        if not file.stem.isidentifier():
            raise refuse(f"{file.name}: a module file name must be a Python identifier")
        if str(file.parent) not in sys.path:
            sys.path.insert(0, str(file.parent))
        module_name = file.stem
    elif not all(part.isidentifier() for part in module_name.split(".")):
        raise refuse(
            f"{excerpt(module_name)} is not a module name; write mypkg.module, or a path such "
            "as ./objectives.py"
        )
    elif str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.append(str(Path.cwd()))
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        raise refuse(
            f"{top} is the Python standard library's module, not an objective (a file of "
            "yours with that name would be shadowed by it: rename it)"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # the user's module: any error while importing it is theirs
        raise refuse(
            f"cannot import {module_name} ({type(err).__name__}: {excerpt(str(err))[1:-1]})"
        ) from None
    function = getattr(module, attr, None) if attr.isidentifier() else None
    if function is None:
        raise refuse(f"{module_name} has no function {excerpt(attr)}")
    if not inspect.isfunction(function):
        raise refuse(
            f"{attr} is a {type(function).__name__}, not a Python function; write "
            "def f(params, reporter) at the top level of a module"
        )
    if function.__qualname__ != function.__name__ or function.__name__ == "<lambda>":
        raise refuse(f"{attr} must be a module-level function (def), not {function.__qualname__}")
    try:
        inspect.signature(function).bind(object(), object())
    except TypeError:
        raise refuse(
            f"{attr}{inspect.signature(function)} cannot be called as {attr}(params, reporter)"
        ) from None
    return function


def check_function(function: Any, in_workers: bool = False, flag: str = "objective") -> Any:
    """A callable objective given from Python (hpo.search(objective=f)), checked before any trial:
    it must accept (params, reporter), and, when trials run in worker processes (parallel > 1),
    pickle (a module-level function or an instance of a module-level class; not a lambda)."""
    import inspect
    import pickle

    name = getattr(function, "__qualname__", type(function).__name__)
    try:
        inspect.signature(function).bind(object(), object())
    except TypeError:
        raise ConfigError(
            f"{flag} {name}{inspect.signature(function)}: cannot be called as "
            f"{name}(params, reporter) ({flag})"
        ) from None
    except ValueError:  # a builtin without a signature: let the first trial say
        pass
    if in_workers:
        try:
            pickle.dumps(function)
        except Exception as err:  # pickle raises several types for the same problem
            raise ConfigError(
                f"{flag} {name}: parallel > 1 runs trials in worker processes, which need a "
                f"function they can import (a module-level def, not a lambda or a local "
                f"function): {type(err).__name__} ({flag})"
            ) from None
    return function
