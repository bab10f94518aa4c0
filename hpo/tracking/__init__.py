"""Trackers: where a study's runs, params and metrics go (MLflow), beside the live view.

Importing this package is cheap: mlflow is imported when a tracker connects.
"""

from hpo.tracking.mlflow_tracker import MlflowTracker

__all__ = ["MlflowTracker"]
