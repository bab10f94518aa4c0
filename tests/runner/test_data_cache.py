"""The tokenized-data cache (runner.data.cache)."""

from pathlib import Path

import numpy as np
import pytest

from runner.data.cache import cache_key, cache_root, load_entry, store_entry, token_dtype
from runner.errors import DataError


def test_stored_entry_loads_memory_mapped_with_its_texts(tmp_path: Path):
    key = cache_key({"a": 1})
    store_entry(tmp_path, key, {"tokens": np.arange(5, dtype=np.uint16)}, {"stats": "{}"})
    entry = load_entry(tmp_path, key)
    assert isinstance(entry.arrays["tokens"], np.memmap)
    assert entry.arrays["tokens"].tolist() == [0, 1, 2, 3, 4] and entry.texts == {"stats": "{}"}


def test_losing_a_store_race_returns_the_winners_entry_and_leaves_no_temp_folder(tmp_path: Path):
    key = cache_key({"a": 1})
    store_entry(tmp_path, key, {"tokens": np.zeros(3, np.uint16)}, {})
    loser = store_entry(tmp_path, key, {"tokens": np.ones(3, np.uint16)}, {})
    assert loser.arrays["tokens"].tolist() == [0, 0, 0]
    assert [p.name for p in tmp_path.iterdir()] == [key]


def test_missing_entry_loads_as_none(tmp_path: Path):
    assert load_entry(tmp_path, cache_key({"a": 2})) is None


def test_key_depends_on_every_setting_and_not_on_their_order():
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1})
    assert cache_key({"a": 1, "b": 2}) != cache_key({"a": 1, "b": 3})


def test_cache_root_defaults_to_the_environment_variable(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HPO_CACHE_DIR", str(tmp_path / "env"))
    assert cache_root(None) == tmp_path / "env" and (tmp_path / "env").is_dir()
    assert cache_root(str(tmp_path / "own")) == tmp_path / "own"


def test_unwritable_cache_root_is_an_error_naming_the_setting(tmp_path: Path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="data.cache_dir"):
        cache_root(str(tmp_path / "file" / "cache"))


def test_token_dtype_is_uint16_up_to_65536_ids_else_int32():
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.int32
