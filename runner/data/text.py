"""Plain text in: corpus files, documents, cleaning, the deterministic split, length statistics.

Documents are the unit of cleaning and of the train/validation split:
- a folder: each text file in it (recursively, sorted by path) is one document;
- a single file: its blank-line-separated paragraphs are the documents, so that a
  one-file corpus such as tinyshakespeare can still be split;
- no path: each `*.py` file of the Python standard library is one document.

Labelled examples (classify) come from a CSV/TSV table or a folder with one file per class,
see read_labelled_examples.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import re
import sysconfig
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from runner.errors import DataError

# Test suites and the IDE are skipped so the default corpus is the library proper;
# installed packages are skipped because they differ from one machine to the next.
STDLIB_SKIPPED_DIRS = frozenset(
    {"test", "tests", "idle_test", "idlelib", "site-packages", "dist-packages", "__pycache__"}
)

# C0 and C1 control characters except tab (\x09) and newline (\x0a).
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_BLANK_LINE = re.compile(r"\n\s*\n")
TABLE_DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
SNIFF_BYTES = 8192
# Not text: more than this fraction of a non-UTF-8 prefix is bytes >= 0x80 (latin-1 prose has
# a few accented letters; random or compressed bytes have half)
MAX_HIGH_BYTE_FRACTION = 0.3
MAX_CONTROL_BYTE_FRACTION = 0.05  # C0 controls other than tab, newlines, form feed
_TEXT_CONTROLS = frozenset(b"\t\n\r\x0c\x1b")


def looks_like_text(head: bytes) -> bool:
    """Whether the first bytes of a file are text.

    Text: no NUL byte, few control bytes, and either valid UTF-8 or (read as latin-1, which
    read_text falls back to for older corpora such as rt-polarity v1.0) mostly ASCII. Images,
    archives, .npy files and random bytes fail.
    """
    if b"\x00" in head:
        return False
    if not head:
        return True
    controls = sum(1 for b in head if (b < 0x20 and b not in _TEXT_CONTROLS) or b == 0x7F)
    if controls > MAX_CONTROL_BYTE_FRACTION * len(head):
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as err:
        if err.start >= len(head) - 3 and err.reason == "unexpected end of data":
            return True  # the sniffed prefix cut a multi-byte character in two
    return sum(1 for b in head if b >= 0x80) <= MAX_HIGH_BYTE_FRACTION * len(head)


# A file of a class folder named like these is named after its stem, any other after its
# extension: rt-polarity.pos -> "pos", but positive.txt -> "positive".
_PLAIN_TEXT_SUFFIXES = frozenset({"", ".txt", ".text"})


def read_text(path: Path, max_chars: int = 0) -> str:
    """A file's text, newlines normalised to \\n: UTF-8, or latin-1 where the bytes are not UTF-8.

    latin-1 decodes any byte sequence, so older corpora (e.g. rt-polarity v1.0) read without loss.
    """
    limit = max_chars if max_chars > 0 else -1
    try:
        with open(path, encoding="utf-8-sig") as file:
            return file.read(limit)
    except UnicodeDecodeError:
        with open(path, encoding="latin-1") as file:
            return file.read(limit)


def stdlib_source_files() -> list[Path]:
    """The `*.py` files of this Python's standard library, sorted, without tests and the IDE."""
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(
        path for path in _walk_files(root, skipped_dirs=STDLIB_SKIPPED_DIRS) if path.suffix == ".py"
    )


def corpus_files(folder: Path) -> list[Path]:
    """Every text file under `folder`, sorted; hidden files and binary files are skipped."""
    return sorted(path for path in _walk_files(folder, skipped_dirs=frozenset()) if _is_text(path))


def read_documents(path: str | None, max_chars: int) -> list[str]:
    """The raw documents of an lm corpus (see the module docstring), at most `max_chars` in all."""
    if path is None:
        return _read_files_as_documents(stdlib_source_files(), max_chars)
    source = Path(path)
    if source.is_dir():
        files = corpus_files(source)
        if not files:
            raise DataError(
                f"data.path: no text files found under {source}; add some or fix the path"
            )
        return _read_files_as_documents(files, max_chars)
    return [p for p in _BLANK_LINE.split(read_text(source, max_chars)) if p.strip()]


def fingerprint(texts: Iterable[str]) -> str:
    """A sha256 of a sequence of texts, unambiguous about where one text ends."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def clean_documents(
    docs: Sequence[str], min_chars: int, max_chars: int
) -> tuple[list[str], dict[str, int]]:
    """Remove control characters, drop documents outside [min_chars, max_chars] and duplicates.

    Returns the kept documents in their original order and the count of each removal.
    """
    kept: list[str] = []
    seen: set[str] = set()
    counts = {
        "docs_read": len(docs),
        "control_chars_removed": 0,
        "docs_too_short": 0,
        "docs_too_long": 0,
        "docs_duplicate": 0,
    }
    for raw in docs:
        doc, removed = _CONTROL_CHARS.subn("", raw)
        counts["control_chars_removed"] += removed
        if len(doc) < min_chars:
            counts["docs_too_short"] += 1
        elif len(doc) > max_chars:
            counts["docs_too_long"] += 1
        elif doc in seen:
            counts["docs_duplicate"] += 1
        else:
            seen.add(doc)
            kept.append(doc)
    counts["docs_kept"] = len(kept)
    return kept, counts


def split_documents(
    docs: Sequence[str], val_fraction: float, seed: int
) -> tuple[list[str], list[str]]:
    """Split documents into (train, val) by seed; val holds about `val_fraction` of the characters.

    Documents are shuffled with random.Random(seed) and taken into validation until it holds
    its share; each side gets at least one document. Both keep the corpus order.
    """
    if len(docs) < 2:
        raise DataError(
            f"the corpus has {len(docs)} document(s) after cleaning and the train/validation split "
            "needs at least 2: add text, separate documents with blank lines, or lower "
            "data.min_doc_chars"
        )
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    target = val_fraction * sum(len(doc) for doc in docs)
    val_ids: set[int] = set()
    val_chars = 0
    for index in order[: len(docs) - 1]:
        if val_ids and val_chars >= target:
            break
        val_ids.add(index)
        val_chars += len(docs[index])
    train = [doc for i, doc in enumerate(docs) if i not in val_ids]
    val = [doc for i, doc in enumerate(docs) if i in val_ids]
    return train, val


def length_percentiles(lengths: Sequence[int] | np.ndarray, name: str) -> dict[str, float]:
    """P50/P90/P95 of `lengths`, keyed `{name}_p50` etc. (0.0 for no lengths)."""
    values = np.asarray(lengths, dtype=np.float64)
    if values.size == 0:
        return {f"{name}_p{q}": 0.0 for q in (50, 90, 95)}
    return {f"{name}_p{q}": round(float(np.percentile(values, q)), 2) for q in (50, 90, 95)}


def read_labelled_examples(
    path: Path, text_column: str, label_column: str
) -> tuple[list[str], list[str], int]:
    """(texts, labels, dropped) of a CSV/TSV file or of a folder with one file per class.

    A table has a header row and is read by extension (.csv with quoting, .tsv/.tab without).
    In a folder every visible file is a class, one example per line, named by
    class_name_of_file. Examples with an empty text or label are dropped and counted.
    """
    pairs = (
        _read_class_folder(path) if path.is_dir() else _read_table(path, text_column, label_column)
    )
    texts: list[str] = []
    labels: list[str] = []
    for text, label in pairs:
        if text.strip() and label.strip():
            texts.append(text.strip())
            labels.append(label.strip())
    return texts, labels, len(pairs) - len(texts)


def class_name_of_file(path: Path) -> str:
    """A class file's class: its extension, or its stem for .txt or no extension."""
    return path.stem if path.suffix.lower() in _PLAIN_TEXT_SUFFIXES else path.suffix[1:]


def _read_class_folder(folder: Path) -> list[tuple[str, str]]:
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"data.path: {folder} holds no files; put one file per class in it")
    return [(line, class_name_of_file(path)) for path in files for line in _lines(read_text(path))]


def _lines(text: str) -> list[str]:
    # Only \n ends a line: str.splitlines() would also split on form feeds and \u2028 in text.
    lines = text.split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def _read_table(path: Path, text_column: str, label_column: str) -> list[tuple[str, str]]:
    delimiter = TABLE_DELIMITERS.get(path.suffix.lower())
    if delimiter is None:
        raise DataError(
            f"data.path: {path} is neither a .csv/.tsv file nor a folder; "
            "give the table one of those extensions or use a folder with one file per class"
        )
    quoting = csv.QUOTE_MINIMAL if delimiter == "," else csv.QUOTE_NONE
    reader = csv.DictReader(io.StringIO(read_text(path)), delimiter=delimiter, quoting=quoting)
    columns = reader.fieldnames or []
    for key, column in (("data.text_column", text_column), ("data.label_column", label_column)):
        if column not in columns:
            raise DataError(
                f"data.path: {path} has no column '{column}' ({key}); its header has "
                f"{', '.join(repr(c) for c in columns) or 'no columns'}; set {key} to one of them"
            )
    return [(row[text_column] or "", row[label_column] or "") for row in reader]


def _read_files_as_documents(files: Sequence[Path], max_chars: int) -> list[str]:
    docs: list[str] = []
    remaining = max_chars
    for path in files:
        doc = read_text(path, remaining if max_chars > 0 else 0)
        docs.append(doc)
        if max_chars > 0:
            remaining -= len(doc)
            if remaining <= 0:
                break
    return docs


def _walk_files(root: Path, skipped_dirs: frozenset[str]) -> Iterable[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skipped_dirs and not d.startswith(".")]
        for name in files:
            if not name.startswith("."):
                yield Path(folder) / name


def _is_text(path: Path) -> bool:
    with open(path, "rb") as file:
        return looks_like_text(file.read(SNIFF_BYTES))
