"""Publishing a finished study on its MLflow run: plots, study files and the best model.

`hpo search` publishes once the study has ended and its tracker delivered everything; when the
store did not answer, the tracker leaves a "publish" mark in the study's pending journal
(hpo.tracking.pending) and `hpo sync` publishes once it has delivered the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def publish_study(client: Any, parent_run_id: str, study_dir: str | Path) -> bool:
    """Plots and the best model (registered) on the study's run; False, with a warning, on failure.

    Best effort: the study is done and on disk, so a failure is a warning, not an error.
    """
    from hpo.tracking.artifacts import log_study_artifacts
    from hpo.tracking.model_registry import log_best_model

    study_dir = Path(study_dir)
    try:
        log_study_artifacts(client, parent_run_id, study_dir)
        best = study_dir / "best"
        # plain-function objectives have none; command trials a folder (checkpoints/best)
        if (best / "best.pt").is_file() or (best / "best").is_dir():
            version = log_best_model(client, parent_run_id, study_dir)
            print(f"registered model {version.name} version {version.version}")
    except Exception as err:  # noqa: BLE001 (any failure of plotting or of the store)
        print(f"hpo: warning: study artifacts not logged to MLflow ({err})", file=sys.stderr)
        return False
    return True
