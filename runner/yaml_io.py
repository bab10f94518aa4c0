"""Reading the YAML a user writes (experiments, spaces, -o values) with bounds and strictness.

yaml.safe_load already runs no code; this adds what a safe loader still lets through:
- size: a file over MAX_YAML_BYTES is refused before it is parsed (a 50 MB file took minutes);
- text: a file that is not UTF-8 is refused with its name, not a UnicodeDecodeError;
- aliases: more than MAX_ALIASES `*alias` references are refused (a "billion laughs" bomb is a
  few dozen aliases that expand exponentially when anything walks or prints the result);
- duplicate keys: a key repeated in one mapping is an error naming both lines (PyYAML keeps the
  last one silently, which hides typos and merge mistakes).
Every refusal is a ConfigError "FILE:LINE: what is wrong".

Example:
    >>> load_yaml_text("a: 1\\na: 2\\n", "space.yaml")
    Traceback (most recent call last):
    runner.errors.ConfigError: space.yaml:2: duplicate key 'a' (first at line 1)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runner.errors import ConfigError

MAX_YAML_BYTES = 1_000_000  # a space or experiment file is a few KB; 1 MB is plenty
MAX_ALIASES = 50  # enough for anchors reused by hand; far too few for an exponential bomb
EXCERPT_CHARS = 80  # the most of the user's input an error message repeats


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """repr(value), cut to `limit` characters: error messages never echo a huge input."""
    text = repr(value) if not isinstance(value, str) else repr(value)
    if len(text) > limit:
        return text[: limit - 3] + "..."
    return text


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and refuses duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases_seen = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise _Refused(mark.line + 1, f"more than {MAX_ALIASES} YAML aliases")
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges; the keys it brings may be overridden here
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # a list or mapping used as a key
                raise _Refused(
                    key_node.start_mark.line + 1, f"a key must be a plain value, not {excerpt(key)}"
                ) from None
            line = key_node.start_mark.line + 1
            if first is not None:
                raise _Refused(line, f"duplicate key {excerpt(key)} (first at line {first})")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


class _Refused(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def load_yaml_text(text: str, source: str) -> Any:
    """Parse YAML text from `source` (a file name, or e.g. "-o train.seed") strictly."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: larger than {MAX_YAML_BYTES // 1_000_000} MB; not read")
    loader = _StrictLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as err:
        raise ConfigError(f"{source}:{err.line}: {err.message}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{source}{where}: invalid YAML: {excerpt(problem, 120)[1:-1]}") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def load_yaml_file(path: str | Path, what: str = "file") -> Any:
    """Read and parse a YAML file strictly; ConfigError naming the file for every problem.

    `what` names the file's role in "not found" messages (experiment file, space file).
    """
    path = Path(path)
    try:
        if not path.is_file():
            raise ConfigError(f"{path}: {what} not found")
        if path.stat().st_size > MAX_YAML_BYTES:
            raise ConfigError(
                f"{path}: larger than {MAX_YAML_BYTES // 1_000_000} MB; not a {what}"
            )
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
    return load_yaml_text(text, str(path))
