"""hpo: hyperparameter search over PyTorch / transformers training trials.

The search side: spaces (hpo.space), drivers (hpo.drivers), the trial loop (hpo.parallel) and
its worker processes (hpo.trial_processes), study outputs (hpo.study) and the `hpo` command
(hpo.cli). Nothing heavy is imported here, so that `hpo --help` stays fast.

A training script run by `hpo search --command` reports to the search with hpo.report,
hpo.should_prune, hpo.raise_when_pruned and hpo.report_checkpoint (hpo.command_client: the
standard library only, so `import hpo` imports no torch, optuna, ray or mlflow).

The Python API: hpo.search and hpo.train (hpo.api), their exceptions in hpo.errors; each is
imported when first used.
"""

from typing import Any

from hpo.command_client import (
    TrialPruned,
    raise_when_pruned,
    report,
    report_checkpoint,
    should_prune,
)

__all__ = [
    "TrialPruned",
    "raise_when_pruned",
    "report",
    "report_checkpoint",
    "should_prune",
]


_LAZY = {"search": "hpo.api", "train": "hpo.api", "errors": "hpo.errors"}


def __getattr__(name: str) -> Any:
    """hpo.__version__ (see hpo.version), and the API's names, imported when first used."""
    if name == "__version__":
        from hpo.version import hpo_version

        return hpo_version()
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return module if module.__name__ == f"hpo.{name}" else getattr(module, name)
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
