"""Trackers: where a study's runs, params and metrics go (MLflow), beside the live view.

Importing this package is cheap: mlflow is imported when a tracker connects. It first sets
MLflow's process-wide environment (hpo.tracking.mlflow_env: one bounded HTTP attempt per
request, no telemetry), before any hpo module imports mlflow.
"""

from hpo.tracking import mlflow_env  # noqa: F401 (first: before anything imports mlflow)
from hpo.tracking.mlflow_tracker import MlflowTracker

__all__ = ["MlflowTracker"]
