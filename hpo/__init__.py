"""hpo: hyperparameter search over PyTorch / transformers training trials.

The search side: spaces (hpo.space), drivers (hpo.drivers), the trial loop (hpo.parallel) and
its worker processes (hpo.trial_processes), study outputs (hpo.study) and the `hpo` command
(hpo.cli). Nothing heavy is imported here, so that `hpo --help` stays fast.

A training script run by `hpo search --command` reports to the search with hpo.report,
hpo.should_prune, hpo.raise_when_pruned and hpo.report_checkpoint (hpo.command_client: the
standard library only, so `import hpo` imports no torch, optuna, ray or mlflow).
"""

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


def __getattr__(name: str) -> str:
    """hpo.__version__, from the one place the version is written (see hpo.version)."""
    if name == "__version__":
        from hpo.version import hpo_version

        return hpo_version()
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
