"""hpo: hyperparameter search over PyTorch / transformers training trials.

The search side: spaces (hpo.space), drivers (hpo.drivers), the trial loop (hpo.parallel) and
its worker processes (hpo.trial_processes), study outputs (hpo.study) and the `hpo` command
(hpo.cli). Nothing heavy is imported here, so that `hpo --help` stays fast.
"""

__version__ = "0.1.0"
