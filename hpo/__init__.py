"""hpo: hyperparameter search over PyTorch / transformers training trials.

The search side: spaces (hpo.space), drivers (hpo.drivers), the trial loop (hpo.parallel) and
its worker processes (hpo.trial_processes), study outputs (hpo.study) and the `hpo` command
(hpo.cli). Nothing heavy is imported here, so that `hpo --help` stays fast.
"""


def __getattr__(name: str) -> str:
    """hpo.__version__, from the one place the version is written (see hpo.version)."""
    if name == "__version__":
        from hpo.version import hpo_version

        return hpo_version()
    raise AttributeError(f"module 'hpo' has no attribute {name!r}")
