"""Errors a user can cause. The CLI turns each into one line and exit code 2."""

from __future__ import annotations

import re

# "SOURCE[:LINE]: problem (KEY)", the form every message aims for (see README, Input and errors)
_LOCATED = re.compile(
    r"(?P<source>[^\s:][^:\n]*?)(?::(?P<line>\d+))?: (?P<problem>.+?)(?: \((?P<key>[^()\n]+)\))?",
    re.DOTALL,
)


class UserInputError(Exception):
    """Bad input detected before any work starts: the message says what, where and how to fix it.

    Python callers (hpo.search, hpo.train) may read the parts of a "SOURCE:LINE: problem (KEY)"
    message: `source` (a file, or a flag such as --timeout), `line`, `problem` and `key`; each
    is None when the message has no such part.
    """

    def _part(self, name: str) -> str | None:
        match = _LOCATED.fullmatch(str(self))
        return match.group(name) if match else None

    @property
    def source(self) -> str | None:
        return self._part("source")

    @property
    def line(self) -> int | None:
        line = self._part("line")
        return None if line is None else int(line)

    @property
    def problem(self) -> str:
        return self._part("problem") or str(self)

    @property
    def key(self) -> str | None:
        return self._part("key")


class ConfigError(UserInputError):
    """An experiment file or override is invalid."""


class DataError(UserInputError):
    """The data a config points at is missing, empty or unusable."""


class CheckpointError(UserInputError):
    """A checkpoint is missing, corrupt or was not written by this runner."""


class UsageError(UserInputError):
    """A command-line flag is missing, unknown or has a value of the wrong kind."""
