"""Text that reaches a terminal: control characters escaped, length bounded, names restricted.

A study name, a param key or value, a file name or a message quoting the user's input can hold
escape sequences (ESC [ 2 J clears the screen, OSC 52 writes the clipboard, U+202E reverses the
text that follows). Everything hpo prints that came from a user or a file goes through
printable() first, so the terminal shows `\\x1b[2J` instead of obeying it.

Names are restricted where they are chosen, so that they never need escaping afterwards:
- a study name (a folder under --runs, an MLflow tag, a DVC path): letters, digits and `._-`,
  not starting with `.` or `-`, at most 100 characters (STUDY_NAME);
- a param key: a dotted config key, parts of letters, digits, `_` and `-` (PARAM_KEY).

Example:
    >>> printable("trial\\x1b[2J done")
    'trial\\\\x1b[2J done'
"""

from __future__ import annotations

import os
import re
import unicodedata
from typing import TextIO

MAX_MESSAGE_CHARS = 1000  # an error line longer than this is cut (its input can be huge)
STUDY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,99}")
PARAM_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
MAX_PARAM_KEY_CHARS = 200

# Cc: C0/C1 controls and DEL; Cf: format characters (bidi overrides, zero-width joiners);
# Zl/Zp: line and paragraph separators, which would break a one-line message.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: object, limit: int | None = MAX_MESSAGE_CHARS) -> str:
    """str(text) with every control, format or unassigned character escaped (\\x1b, \\u202e),
    newlines and tabs included, cut to `limit` characters with `...` when longer."""
    raw = str(text)
    if limit is not None and len(raw) > 4 * limit:  # escaping at most quadruples a character
        raw = raw[: 4 * limit]
    out = []
    for char in raw:
        if char.isascii() and " " <= char <= "~":
            out.append(char)
        elif not char.isascii() and unicodedata.category(char) not in _UNSAFE_CATEGORIES:
            out.append(char)
        else:
            out.append(_escape(char))
    safe = "".join(out)
    if limit is not None and len(safe) > limit:
        safe = safe[: limit - 3] + "..."
    return safe


def check_study_name(name: str) -> str | None:
    """None when `name` is a valid study name, else what is wrong with it."""
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
        return "a study name is a plain folder name: 1-100 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
    return None


def check_param_key(key: object) -> str | None:
    """None when `key` is a valid param key (a dotted config key), else what is wrong."""
    if not isinstance(key, str) or len(key) > MAX_PARAM_KEY_CHARS or not PARAM_KEY.fullmatch(key):
        return (
            "a param key is a dotted config key: parts of letters, digits, '_' or '-' joined by '.'"
        )
    return None


def use_live_display(stream: TextIO) -> bool:
    """Redraw in place only on a real terminal that can take it (not TERM=dumb, not a pipe)."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM", "") != "dumb"
