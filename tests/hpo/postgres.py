"""The PostgreSQL server of this machine for tests: a throwaway database per test.

    def test_x(postgres_url):          # import the fixture: from postgres import postgres_url
        ...                            # postgresql://USER@127.0.0.1:5432/hpo_test_<random>

The server is $HPO_TEST_POSTGRES_HOST:$HPO_TEST_POSTGRES_PORT (default 127.0.0.1:5432) with
trust authentication, as user postgres (else the login user). A test skips, saying why, when
psycopg (3: the driver SQLAlchemy 2.1 uses for postgresql://) is missing or no server answers.
The database is dropped after the test, even when connections to it are still open
(DROP DATABASE ... WITH (FORCE), PostgreSQL >= 13).
"""

from __future__ import annotations

import getpass
import os
import uuid
from collections.abc import Iterator

import pytest

HOST = os.environ.get("HPO_TEST_POSTGRES_HOST", "127.0.0.1")
PORT = int(os.environ.get("HPO_TEST_POSTGRES_PORT", "5432"))
USERS = ("postgres", getpass.getuser())
_reachable: tuple[str | None, str] | None = None  # (user, why not) once probed


def server_user() -> tuple[str | None, str]:
    """A user the server lets in (None and why not, when none does)."""
    global _reachable
    if _reachable is None:
        try:
            import psycopg
        except ImportError:
            _reachable = None, "psycopg is not installed (pip install 'psycopg[binary]')"
            return _reachable
        reasons = []
        for user in USERS:
            try:
                psycopg.connect(
                    host=HOST, port=PORT, user=user, dbname="postgres", connect_timeout=3
                ).close()
                _reachable = user, ""
                break
            except psycopg.OperationalError as err:
                reasons.append(f"{user}: {str(err).strip().splitlines()[0]}")
        else:
            _reachable = None, f"no PostgreSQL server at {HOST}:{PORT} ({'; '.join(reasons)})"
    return _reachable


def _admin(user: str, statement: str) -> None:
    import psycopg

    # autocommit: CREATE / DROP DATABASE cannot run in a transaction
    with psycopg.connect(
        host=HOST, port=PORT, user=user, dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(statement)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty database on the local server, dropped after the test."""
    user, why = server_user()
    if user is None:
        pytest.skip(why)
    name = f"hpo_test_{uuid.uuid4().hex[:12]}"
    _admin(user, f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://{user}@{HOST}:{PORT}/{name}"
    finally:
        _admin(user, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
