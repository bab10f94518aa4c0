"""MLflow's process-wide settings that hpo owns: one bounded HTTP attempt, and no telemetry.

Imported by hpo.tracking's package __init__, so it runs before any hpo module imports mlflow.
MLflow reads both settings from the environment at each request (mlflow.environment_variables,
mlflow.utils.rest_utils.http_request), so setting them here governs every client of the process.

One attempt per request. MLflow's own HTTP client retries a failed request 7 times with a
growing delay (MLFLOW_HTTP_REQUEST_MAX_RETRIES=7, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR=2, up to
120 s between tries): about 4 minutes in which the request blocks. hpo's SendBuffer already
retries forever in its own thread and keeps the rows until a request succeeds, so MLflow's
retries only hid an outage and held back everything queued behind the request long after the
server was back. hpo therefore sets MAX_RETRIES to 0 (BACKOFF_FACTOR 0 with it), and bounds
one attempt by MLFLOW_HTTP_REQUEST_TIMEOUT: ATTEMPT_TIMEOUT_S unless the user set a value of
their own (a slow link uploading a large model may need more; the end of a study never waits
longer than --tracking-timeout whatever this is, hpo.tracking.buffer.SendBuffer.close).

No telemetry. MLflow 3 sends usage telemetry from background threads; the thread that fetches
its configuration (mlflow.telemetry.client.TelemetryClient._fetch_config), failing without
internet, calls _set_telemetry_client(None), which pops _MLFLOW_TELEMETRY_SESSION_ID from
os.environ while the main thread may be copying os.environ to start a trial process
({**os.environ}, os.environ.copy(): the key list is taken first, then each value is read),
hence "KeyError: '_MLFLOW_TELEMETRY_SESSION_ID'". MLFLOW_DISABLE_TELEMETRY=true, MLflow's
documented switch, keeps that thread from ever starting. It is forced (not a default) because
the race is a crash, not a preference.
"""

from __future__ import annotations

import math
import os
import sys

ATTEMPT_TIMEOUT_S = 15  # seconds one MLflow HTTP request may take (connect, and each read)


def configure() -> None:
    """Set hpo's MLflow environment (idempotent); see the module doc."""
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "0"
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(ATTEMPT_TIMEOUT_S))
    if "mlflow.telemetry" in sys.modules:  # imported before hpo.tracking: drop its client now
        from mlflow.telemetry import set_telemetry_client

        set_telemetry_client()  # disabled now, so it sets none


configure()


DEFAULT_TRACKING_TIMEOUT_S = 60.0
TRACKING_TIMEOUT_ENV = "HPO_TRACKING_TIMEOUT"


def tracking_timeout(seconds: float | None = None) -> float:
    """How long the end of a command waits for MLflow: `seconds` (--tracking-timeout), else
    $HPO_TRACKING_TIMEOUT, else 60; a UserInputError for a negative or non-number value."""
    from runner.errors import UserInputError

    source = "--tracking-timeout"
    if seconds is None:
        raw = os.environ.get(TRACKING_TIMEOUT_ENV, "").strip()
        if not raw:
            return DEFAULT_TRACKING_TIMEOUT_S
        source = TRACKING_TIMEOUT_ENV
        try:
            seconds = float(raw)
        except ValueError:
            raise UserInputError(f"{source}: expected seconds, got {raw!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise UserInputError(f"{source}: expected seconds >= 0, got {seconds:g}")
    return float(seconds)
