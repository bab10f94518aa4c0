"""The exceptions hpo's Python API raises, in one place (the `hpo` command turns each into a line).

    UserInputError            bad input, found before any work: `hpo: error: ...`, exit 2
      ConfigError             an experiment file or override (runner.errors)
      DataError               the data a config reads (runner.errors)
      CheckpointError         a checkpoint to resume from (runner.errors)
      UsageError              a flag, or an argument of hpo.search / hpo.train
      SpaceError              a space file or dict, an --enqueue file (hpo.space)
      StudyFileError          a damaged file of a study (hpo.study)
    StorageError              the disk refused a write (runner.files): exit 1
    SearchFailed              every trial of a search failed: exit 1

A UserInputError's message is "SOURCE:LINE: problem (KEY)"; its `source`, `line`, `problem` and
`key` attributes give those parts (None where the message has none).

SpaceError and StudyFileError are looked up when first used, so that importing this module
stays as light as `import hpo`.
"""

from __future__ import annotations

from typing import Any

from runner.errors import CheckpointError, ConfigError, DataError, UsageError, UserInputError
from runner.files import StorageError

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "SearchFailed",
    "SpaceError",  # noqa: F822 (looked up by __getattr__)
    "StorageError",
    "StudyFileError",  # noqa: F822
    "UsageError",
    "UserInputError",
]


class SearchFailed(RuntimeError):
    """Every trial of the search failed; `result` holds them (hpo.api.SearchResult), the message
    the first one's reason."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


def __getattr__(name: str) -> Any:
    if name == "SpaceError":
        from hpo.space.errors import SpaceError

        return SpaceError
    if name == "StudyFileError":
        from hpo.study import StudyFileError

        return StudyFileError
    raise AttributeError(f"module 'hpo.errors' has no attribute {name!r}")
