"""Fixtures every test shares, in tests/hpo, tests/runner and the tests at this level."""

import pytest


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Each test session tokenizes into its own cache, never the user's ~/.cache/hpo."""
    monkeypatch.setenv("HPO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "hpo-cache"))
