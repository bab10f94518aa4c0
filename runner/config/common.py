"""What every module of runner.config shares: documented fields (with their ranges), the `need`
check that validation passes around, a nested dict's copy, and whether an optional package is
installed."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import field
from typing import Any

from runner.schema import Allowed

# need(ok, key, message): raises ConfigError "SOURCE: message (key)" unless ok (see validate)
Need = Callable[[bool, str, str], None]


def documented(default: Any, doc: str, allowed: Allowed | None = None, **bounds: Any) -> Any:
    """A dataclass field with its one-line documentation attached, and what its value allows
    beyond its annotation (a runner.schema.Allowed, or its low, high, limit, ...), which
    loading checks (runner.config.typed)."""
    if bounds:
        allowed = Allowed(**bounds)
    metadata = {"doc": doc} if allowed is None else {"doc": doc, "allowed": allowed}
    return field(default=default, metadata=metadata)


def deep_copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: deep_copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


def findable(module: str) -> bool:
    """Whether `module` is installed, looked up without importing it (validating stays cheap)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a finder that refuses it; a module without a spec
        return False
