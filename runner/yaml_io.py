"""Reading the YAML a user writes (experiments, spaces, -o values) with bounds and strictness.

yaml.safe_load already runs no code; this adds what a safe loader still lets through:
- size: a file over MAX_YAML_BYTES is refused before it is parsed (a 50 MB file took minutes);
- text: a file that is not UTF-8 is refused with its name, not a UnicodeDecodeError;
- aliases: more than MAX_ALIASES `*alias` references are refused (a "billion laughs" bomb is a
  few dozen aliases that expand exponentially when anything walks or prints the result);
- shape: a document that nests deeper than MAX_DEPTH, refers to itself through an alias, or
  holds more than MAX_EXPANDED_NODES values once aliases are expanded is refused (checked on
  the composed nodes, each visited once, before anything is built);
- duplicate keys: a key repeated in one mapping is an error naming both lines (PyYAML keeps the
  last one silently, which hides typos and merge mistakes).
Every refusal is a ConfigError "FILE:LINE: what is wrong".

Example:
    >>> load_yaml_text("a: 1\\na: 2\\n", "space.yaml")
    Traceback (most recent call last):
    runner.errors.ConfigError: space.yaml:2: duplicate key 'a' (first at line 1)
"""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

import yaml

from runner.errors import ConfigError, UserInputError

MAX_YAML_BYTES = 1_000_000  # a space or experiment file is a few KB; 1 MB is plenty
MAX_ALIASES = 50  # enough for anchors reused by hand; far too few for an exponential bomb
MAX_EXPANDED_NODES = 1_000_000  # values once aliases are expanded: what a reader walks
MAX_DEPTH = 100  # nesting of lists and mappings (a config is 2-3 levels deep)
EXCERPT_CHARS = 80  # the most of the user's input an error message repeats

_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = EXCERPT_CHARS
_SHORT_REPR.maxlevel, _SHORT_REPR.maxlist, _SHORT_REPR.maxdict = 2, 4, 4


def excerpt(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """A short repr of value, at most `limit` characters: an error message never echoes a huge
    input, and never walks one (reprlib stops after a few items and levels)."""
    text = repr(value[: limit + 1]) if isinstance(value, str) else _SHORT_REPR.repr(value)
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


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _check_shape(root: yaml.Node) -> None:
    """Refuse a composed document that is recursive, too deep, or too large once its aliases are
    expanded. Each distinct node is visited once (aliases share nodes), so a bomb costs nothing
    here; the expanded size is what yaml.safe_dump, deep copies or a repr would walk."""
    sizes: dict[int, int] = {}  # id(node) -> its expanded size, once known
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > MAX_EXPANDED_NODES:
                raise _Refused(
                    node.start_mark.line + 1,
                    f"more than {MAX_EXPANDED_NODES:,} values once its aliases are expanded",
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise _Refused(node.start_mark.line + 1, "an alias refers to a node that holds it")
        on_path.add(key)
        if len(on_path) > MAX_DEPTH:
            raise _Refused(node.start_mark.line + 1, f"nested deeper than {MAX_DEPTH} levels")
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _key_lines(root: yaml.Node | None) -> dict[str, int]:
    """{'search.seed': 9, ...}: the line of every key reached through mappings only."""
    lines: dict[str, int] = {}
    stack = [("", root)]
    while stack:
        prefix, node = stack.pop()
        if not isinstance(node, yaml.MappingNode) or prefix.count(".") >= MAX_DEPTH:
            continue
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                dotted = prefix + str(key_node.value)
                lines.setdefault(dotted, key_node.start_mark.line + 1)
                stack.append((dotted + ".", value_node))
    return lines


def load_yaml_text(text: str, source: str, error: type[UserInputError] = ConfigError) -> Any:
    """Parse YAML text from `source` (a file name, or e.g. "-o train.seed") strictly.

    Every refusal raises `error` (a UserInputError subclass: ConfigError, or SpaceError for the
    space module's callers, who catch their own type)."""
    return _parse(text, source, error)[0]


def _parse(
    text: str, source: str, error: type[UserInputError] = ConfigError
) -> tuple[Any, dict[str, int]]:
    if len(text) > MAX_YAML_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise error(f"{source}: larger than {MAX_YAML_BYTES // 1_000_000} MB; not read")
    loader = None
    try:
        loader = _StrictLoader(text)  # the reader refuses control characters here already
        root = loader.get_single_node()
        if root is None:
            return None, {}
        _check_shape(root)
        return loader.construct_document(root), _key_lines(root)
    except _Refused as err:
        raise error(f"{source}:{err.line}: {err.message}") from None
    except yaml.reader.ReaderError as err:  # a control character, or an encoding problem
        line = text.count("\n", 0, err.position) + 1
        problem = str(err).splitlines()[0]
        raise error(f"{source}:{line}: invalid YAML: {excerpt(problem, 120)[1:-1]}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise error(f"{source}{where}: invalid YAML: {excerpt(problem, 120)[1:-1]}") from None
    except RecursionError:
        raise error(f"{source}: YAML nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_yaml_file(
    path: str | Path, what: str = "file", error: type[UserInputError] = ConfigError
) -> Any:
    """Read and parse a YAML file strictly; `error` (ConfigError) naming the file for every
    problem. `what` names the file's role in messages (experiment file, space file).
    """
    return load_yaml_file_with_lines(path, what, error)[0]


def load_yaml_file_with_lines(
    path: str | Path, what: str = "file", error: type[UserInputError] = ConfigError
) -> tuple[Any, dict[str, int]]:
    """load_yaml_file, and the line of each key reached through mappings ({'a.b': 3}), for
    messages that point at the line of a value found wrong after parsing."""
    path = Path(path)
    try:
        if not path.is_file():
            if path.exists():
                raise error(f"{path}: not a file; expected a {what}")
            raise error(f"{path}: {what} not found")
        if path.stat().st_size > MAX_YAML_BYTES:
            raise error(f"{path}: larger than {MAX_YAML_BYTES // 1_000_000} MB; not a {what}")
        with path.open("rb") as handle:  # the file may grow between stat and read
            data = handle.read(MAX_YAML_BYTES + 1)
    except OSError as err:
        raise error(f"{path}: cannot read ({err.strerror or err})") from None
    if len(data) > MAX_YAML_BYTES:
        raise error(f"{path}: larger than {MAX_YAML_BYTES // 1_000_000} MB; not a {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not UTF-8 text (byte {err.start})") from None
    return _parse(text, str(path), error)
