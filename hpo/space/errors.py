"""SpaceError: the one exception of hpo.space, below every module of the package.

Its own module, the lowest of the package, because every other one raises it: numeric.py's
fail(key, problem) callbacks return it, and search_space.py, parsing.py and loading.py raise it.
"""

from __future__ import annotations

from runner.errors import UserInputError


class SpaceError(UserInputError):
    """A space file (or an --enqueue file) is invalid; the message names the file and the key."""
