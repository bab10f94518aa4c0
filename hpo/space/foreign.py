"""Spaces written for other tools, converted into hpo's space format (placeholder)."""

from __future__ import annotations

from typing import Any


def to_hpo_space(raw: Any, source: str) -> tuple[Any, list[str]]:
    return raw, []
