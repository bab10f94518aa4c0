"""MLflow's side of tracking: opening a store, experiments and runs, the buffer's operations as
MLflow requests, and the names and values MLflow accepts."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import posixpath
import re
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from hpo.tracking.buffer import Op, Row
from runner.errors import UserInputError

log = logging.getLogger(__name__)

MAX_PARAMS_TAGS_PER_REQUEST = 100  # MLflow's log_batch limits: 100 params + tags, 1000 metrics
MAX_PARAM_VALUE, MAX_TAG_VALUE, MAX_KEY = 6000, 8000, 250  # characters

# Error codes a retry cannot fix; anything else (no connection, 5xx, a locked SQLite file:
# TEMPORARILY_UNAVAILABLE) is an outage the buffer waits out.
PERMANENT_ERRORS = frozenset(
    {
        "INVALID_PARAMETER_VALUE",
        "RESOURCE_DOES_NOT_EXIST",
        "RESOURCE_ALREADY_EXISTS",
        "INVALID_STATE",
        "BAD_REQUEST",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "ENDPOINT_NOT_FOUND",
        "NOT_FOUND",
    }
)


def open_client(tracking_uri: str | None) -> tuple[Any, str]:
    """(MlflowClient, its URI) for tracking_uri, else $MLFLOW_TRACKING_URI or sqlite:///mlflow.db.

    A server that does not answer is a UserInputError, raised before any trial starts. A SQLite
    store is created (its tables, MLflow's migrations) under store_creation_lock.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    # MLflow prints two "View run ... at" lines per run a server ends, here one per trial:
    # the live view already says how each trial ended, and the tracker logs the study's run.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    uri = tracking_uri or mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10):
                pass
        except OSError as err:
            raise UserInputError(
                f"MLflow tracking server {uri} does not answer ({err}); start it, or pass "
                "another --tracking-uri (unset MLFLOW_TRACKING_URI for sqlite:///mlflow.db)"
            ) from None
    from mlflow.exceptions import MlflowException

    with store_creation_lock(uri):
        try:
            client = MlflowClient(uri)  # creates the tracking store: tables, migrations
        except MlflowException as err:  # an unknown scheme, a retired backend: the URI is wrong
            message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserInputError(
                f"MLflow tracking URI {uri!r}: {message} (--tracking-uri)"
            ) from None
        if sqlite_path(uri) is not None:
            client.search_registered_models(max_results=1)  # and the model registry's
    return client, uri


def sqlite_path(uri: str) -> Path | None:
    """The database file of a sqlite:/// URI (relative to the current folder, or absolute)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


@contextlib.contextmanager
def store_creation_lock(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on FILE.lock beside a SQLite store's FILE while it is created.

    MLflow creates a new SQLite store's tables and runs its migrations when a client first
    opens it; two processes doing so at once (two `hpo search` in a new folder) both run the
    migrations and one fails ("table ... already exists"). The second waits here, then finds the
    store made. The lock file stays (deleting it would let a third process lock a new inode).
    Other stores are not locked: a server migrates its own, and a database server's are made
    with `mlflow db upgrade` once.
    """
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    from runner.files import StorageError, exclusive_lock

    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(path.with_name(path.name + ".lock")))
        except StorageError as err:  # the lock file cannot be made: the URI's folder is wrong
            raise UserInputError(f"MLflow store {uri}: {err}") from None
        yield


def experiment_id(client: Any, name: str) -> str:
    """The id of the experiment called name, created when there is none."""
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name)
        except MlflowException:  # another process created it meanwhile
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise UserInputError(
            f"MLflow experiment '{name}' is deleted in {client.tracking_uri}; restore it "
            f"(mlflow experiments restore --experiment-id {experiment.experiment_id}) or "
            "choose another experiment name"
        )
    return experiment.experiment_id


def live_run(client: Any, run_id: str) -> Any | None:
    """The run, unless it does not exist or was deleted (a store that fails raises)."""
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException as err:  # not "no such run": a resumed study must not start anew
        if err.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        return None
    return run if run.info.lifecycle_stage == "active" else None


def child_runs(client: Any, experiment_id: str, parent_run_id: str) -> dict[str, Any]:
    """The parent's live child runs by trial number (as text)."""
    from mlflow.entities import ViewType

    children: dict[str, Any] = {}
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            f"tags.mlflow.parentRunId = '{parent_run_id}'",
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=1000,
            page_token=token,
        )
        for run in page:
            children[run.data.tags.get("hpo.trial", run.info.run_id)] = run
        token = page.token
        if not token:
            return children


class MlflowSender:
    """The buffer's Sender: one MlflowClient, used from the buffer's thread only.

    Operations: create (args name, tags, start_time), params (params), tags (tags), text
    (text, artifact_file) and end (status, end_time).

    A create that failed may still have been carried out: a server that hung (not one that
    refused the connection) can process the request after the client gave up on it, even
    after the retry's search found no run and created one. So a run whose creation was
    retried is checked again when it ends, and other live runs of the same trial (made by
    such late requests) are deleted.
    """

    def __init__(self, client: Any, experiment_id: str, parent_run_id: str) -> None:
        self.client, self.experiment_id, self.parent_run_id = client, experiment_id, parent_run_id
        self._retried_creates: set[str] = set()

    def send_op(self, op: Op, run_ids: MutableMapping[str, str]) -> None:
        args = op.args
        if op.kind == "create":
            # An earlier attempt may have created the run and lost the answer: look first.
            run_id = None
            if op.attempts:
                self._retried_creates.add(op.run)
                run_id = self._created_before(op)
            if run_id is None:
                run_id = self.client.create_run(
                    self.experiment_id,
                    start_time=args["start_time"],
                    tags=args["tags"],
                    run_name=args["name"],
                ).info.run_id
            run_ids[op.run] = run_id
        elif op.kind == "params":
            self.log_params(run_ids[op.run], args["params"])
        elif op.kind == "tags":
            self.log_tags(run_ids[op.run], args["tags"])
        elif op.kind == "text":
            self.client.log_text(run_ids[op.run], args["text"], args["artifact_file"])
        elif op.kind == "end":
            self.client.set_terminated(run_ids[op.run], args["status"], args["end_time"])
            if op.run in self._retried_creates:
                self._delete_duplicates(op.run, run_ids[op.run])
        else:
            raise ValueError(f"unknown tracking operation {op.kind!r}")

    def send_metrics(self, run_id: str, rows: list[Row]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(key, value, timestamp, step) for key, value, timestamp, step in rows]
        self.client.log_batch(run_id, metrics=metrics, synchronous=True)

    def log_params(self, run_id: str, params: Mapping[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), MAX_PARAMS_TAGS_PER_REQUEST):
            self.client.log_batch(run_id, params=items[i : i + MAX_PARAMS_TAGS_PER_REQUEST])

    def log_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, v) for k, v in tags.items()]
        for i in range(0, len(items), MAX_PARAMS_TAGS_PER_REQUEST):
            self.client.log_batch(run_id, tags=items[i : i + MAX_PARAMS_TAGS_PER_REQUEST])

    def is_permanent(self, error: Exception) -> bool:
        return getattr(error, "error_code", None) in PERMANENT_ERRORS

    def _created_before(self, op: Op) -> str | None:
        runs = self._runs_of_trial(op.run)
        return runs[0].info.run_id if runs else None

    def _runs_of_trial(self, run: str) -> list[Any]:
        """The live child runs tagged with this trial, oldest first."""
        return list(
            self.client.search_runs(
                [self.experiment_id],
                f"tags.mlflow.parentRunId = '{self.parent_run_id}' and tags.`hpo.trial` = '{run}'",
                max_results=100,
                order_by=["attributes.start_time ASC"],
            )
        )

    def _delete_duplicates(self, run: str, kept_run_id: str) -> None:
        for duplicate in self._runs_of_trial(run):
            if duplicate.info.run_id != kept_run_id:
                self.client.delete_run(duplicate.info.run_id)
                log.warning(
                    "tracking: deleted run %s, a second run of trial %s that a request the "
                    "client had given up on created late",
                    duplicate.info.run_id,
                    run,
                )
        self._retried_creates.discard(run)


def clean_key(key: str) -> str:
    """A metric or param name MLflow accepts: other characters become _, at most 250 of them."""
    key = re.sub(r"[^\w.\- /:]", "_", str(key))
    key = "/".join(part for part in key.split("/") if part not in ("", ".", ".."))
    key = key[:MAX_KEY] or "_"
    return key if posixpath.normpath(key) == key else key.replace("/", "_")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; empty mappings and lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def param_values(params: Mapping[str, Any]) -> dict[str, str]:
    """Params as MLflow stores them: clean names, readable text values (as_text), truncated."""
    return {clean_key(k): as_text(v, MAX_PARAM_VALUE) for k, v in params.items()}


def as_text(value: Any, limit: int = MAX_TAG_VALUE) -> str:
    """A value as the config file spells it, not as Python does: numbers as numbers (1e-05,
    300), true/false, null, lists and mappings as JSON; strings as they are."""
    if isinstance(value, str):
        text = value
    elif value is None or isinstance(value, bool | list | tuple | dict):
        text = json.dumps(value, default=str)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
