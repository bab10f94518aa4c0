"""The checks of a store's URL before anything opens it: the optuna storage URL (--storage)
and the MLflow tracking URI (--tracking-uri or $MLFLOW_TRACKING_URI), by scheme, and a SQLite
file's folder (or, to join a study, the file). Part of hpo.validation's one pass.
"""

from __future__ import annotations

import os
from pathlib import Path

from runner.errors import UserInputError
from runner.yaml_io import excerpt

STORAGE_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql")
TRACKING_SCHEMES = (
    "file",
    "sqlite",
    "http",
    "https",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "databricks-uc",
    "uc",
)


def _scheme(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep:
        scheme, sep, _ = url.partition(":")
    return scheme.split("+", 1)[0].lower() if sep else ""


def check_storage_url(url: str | None, flag: str, must_exist: bool) -> None:
    """UserInputError unless url is None (a journal file), 'memory' or an SQLAlchemy URL of a
    database Optuna stores studies in; a SQLite file's folder must exist (and, to join a
    study, must_exist, the file itself)."""
    if url is None or url == "memory":
        return
    scheme = _scheme(url)
    if scheme not in STORAGE_SCHEMES:
        raise UserInputError(
            f"{flag} {excerpt(url)}: unknown storage scheme {excerpt(scheme)}; use "
            "sqlite:///FILE, postgresql://USER@HOST/DB, mysql://USER@HOST/DB or memory "
            f"({flag.lstrip('-')})"
        )
    if scheme == "sqlite":
        _check_sqlite_file(url, flag, must_exist)
    _check_postgres_driver(url, flag)


def check_tracking_uri(uri: str | None, flag: str = "--tracking-uri") -> None:
    """UserInputError unless the MLflow tracking URI (or $MLFLOW_TRACKING_URI) has a scheme
    MLflow stores runs with, or is a plain folder path (a file store)."""
    if uri is None:
        uri, flag = os.environ.get("MLFLOW_TRACKING_URI") or None, "MLFLOW_TRACKING_URI"
        if uri is None:
            return  # sqlite:///mlflow.db in the current folder
    scheme = _scheme(uri)
    if scheme == "":
        return  # a folder path: MLflow's file store
    if scheme not in TRACKING_SCHEMES:
        raise UserInputError(
            f"{flag} {excerpt(uri)}: unknown tracking URI scheme {excerpt(scheme)}; use "
            "http(s)://HOST:PORT, sqlite:///FILE, file:///FOLDER, postgresql://..., "
            f"databricks ({flag.lstrip('-').lower()})"
        )
    if scheme == "sqlite":
        _check_sqlite_file(uri, flag, must_exist=False)
    _check_postgres_driver(uri, flag)


def _check_postgres_driver(url: str, flag: str) -> None:
    """A postgresql:// URL needs psycopg, the postgres extra: SQLAlchemy 2.1 (under Optuna and
    MLflow) opens postgresql:// and postgresql+psycopg:// with it. Another driver
    (postgresql+psycopg2://) is the user's to install."""
    from hpo.extras import require_extra

    scheme = url.partition("://")[0].lower()
    name, _, driver = scheme.partition("+")
    if name in ("postgresql", "postgres") and driver in ("", "psycopg"):
        require_extra("postgres", f"{flag} {scheme}://")


def _check_sqlite_file(url: str, flag: str, must_exist: bool) -> None:
    path = url.split("://", 1)[-1]
    path = path[1:] if path.startswith("/") else path  # sqlite:///rel.db, sqlite:////abs.db
    path = path.split("?", 1)[0]
    if path in ("", ":memory:"):
        return
    file = Path(path)
    if must_exist and not file.is_file():
        raise UserInputError(
            f"{flag} {excerpt(url)}: {file} does not exist; give the database hpo search "
            f"--storage created ({flag.lstrip('-')})"
        )
    if not file.resolve().parent.is_dir():
        raise UserInputError(
            f"{flag} {excerpt(url)}: the folder {file.parent} does not exist "
            f"({flag.lstrip('-').lower()})"
        )
