"""The optional cleaning pipeline of data.clean: each step off by default, each counted.

Steps run in this order on every document (lm: the documents read_documents splits on, i.e.
files or blank-line paragraphs; classify: each example's text, i.e. a line or a table row):

1. html: markup to text with the standard library's html.parser (script/style contents
   dropped, entities unescaped, block tags such as <p>, <br>, <li> become line breaks);
2. unicode_normalization: unicodedata.normalize with NFC/NFKC/NFD/NFKD;
3. quality filters: min_chars, max_chars, max_non_alpha_fraction;
4. language: keep documents langdetect identifies as that language (seeded, so the same
   text always gets the same answer; its language profiles ship with the package);
5. dedup: exact (sha256 of the text after steps 1-2) or near (exact, then MinHash over
   character 5-grams with datasketch; a document is dropped when an earlier kept one has an
   estimated Jaccard similarity >= near_duplicate_threshold).

Transforms run before filters so that filters see the text the model will see; dedup runs last
so that it only compares documents that pass every other filter. Earlier documents win: a
duplicate is always the later one, so the result is a pure function of the input order and
the settings (it is part of the data cache key).

Example:
    >>> kept, rows, report = clean_texts(["<p>a</p>", "<p>a</p>"], CleanConfig(html=True, dedup="exact"))
    >>> kept, rows, report["removed_exact_duplicate"]
    (['a'], [0], 1)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import unicodedata
from collections.abc import Sequence
from html.parser import HTMLParser

from runner.config import CleanConfig

# Shingles for near-duplicates: character 5-grams of the lowercased text with whitespace
# collapsed. Characters rather than words so that short classify examples still have enough
# shingles and languages without spaces work; 5 is the common choice for character shingles.
SHINGLE_CHARS = 5
MINHASH_PERMUTATIONS = 128  # estimate error ~ sqrt(J(1-J)/128): about 0.03 at J=0.9
LSH_MARGIN = 0.1  # LSH candidates are sought this far below the threshold (see below)

_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head"})
_BLOCK_TAGS = frozenset(
    {"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"}
    | {"section", "article", "header", "footer", "table", "ul", "ol", "hr", "title"}
)
_SPACES = re.compile(r"[ \t\r\f\v]+")
_WHITESPACE = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(text: str) -> str:
    """The visible text of an HTML fragment or page: one line per block, spaces collapsed."""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.parts).split("\n"))
    return "\n".join(line for line in lines if line)


def non_alpha_fraction(text: str) -> float:
    """The fraction of non-whitespace characters that are not letters (1.0 for none at all)."""
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return 1.0
    return sum(not c.isalpha() for c in visible) / len(visible)


def cleaning_settings(clean: CleanConfig) -> dict[str, object] | None:
    """What the cache key needs of the cleaning: the enabled settings and the versions of the
    packages they use (a new langdetect may classify differently); None when cleaning is off."""
    if not clean.enabled:
        return None
    settings: dict[str, object] = {
        "html": clean.html,
        "unicode_normalization": clean.unicode_normalization,
        "min_chars": clean.min_chars,
        "max_chars": clean.max_chars,
        "max_non_alpha_fraction": clean.max_non_alpha_fraction,
        "language": clean.language,
        "dedup": clean.dedup,
    }
    if clean.dedup == "near":
        settings["near_duplicate_threshold"] = clean.near_duplicate_threshold
        settings["datasketch"] = importlib.metadata.version("datasketch")
    if clean.language is not None:
        settings["langdetect"] = importlib.metadata.version("langdetect")
    return settings


def clean_texts(
    texts: Sequence[str], clean: CleanConfig
) -> tuple[list[str], list[int], dict[str, int]]:
    """(kept texts, their indices in `texts`, report) after the enabled steps (module docstring).

    The report counts documents in and out, documents each transform changed, and documents
    each filter removed; only enabled steps appear in it.
    """
    report: dict[str, int] = {"docs_in": len(texts)}
    docs = list(texts)
    if clean.html:
        converted = [html_to_text(doc) for doc in docs]
        report["html_docs_changed"] = sum(a != b for a, b in zip(docs, converted, strict=True))
        report["html_chars_removed"] = sum(
            len(a) - len(b) for a, b in zip(docs, converted, strict=True)
        )
        docs = converted
    if clean.unicode_normalization != "none":
        form = clean.unicode_normalization
        normalized = [unicodedata.normalize(form, doc) for doc in docs]
        report["unicode_docs_changed"] = sum(a != b for a, b in zip(docs, normalized, strict=True))
        docs = normalized
    rows = list(range(len(docs)))
    filters = []
    if clean.min_chars > 0:
        filters.append(("removed_too_short", lambda doc: len(doc) >= clean.min_chars))
    if clean.max_chars > 0:
        filters.append(("removed_too_long", lambda doc: len(doc) <= clean.max_chars))
    if clean.max_non_alpha_fraction < 1.0:
        limit = clean.max_non_alpha_fraction
        filters.append(("removed_non_alpha", lambda doc: non_alpha_fraction(doc) <= limit))
    if clean.language is not None:
        filters.append(("removed_language", _language_filter(clean.language)))
    if clean.dedup in ("exact", "near"):
        filters.append(("removed_exact_duplicate", _exact_duplicate_filter()))
    if clean.dedup == "near":
        filters.append(
            ("removed_near_duplicate", _near_duplicate_filter(clean.near_duplicate_threshold))
        )
    for name, keep in filters:
        before = len(rows)
        rows = [row for row in rows if keep(docs[row])]
        report[name] = before - len(rows)
    report["docs_out"] = len(rows)
    return [docs[row] for row in rows], rows, report


def _language_filter(language: str):
    from langdetect import DetectorFactory, detect
    from langdetect.lang_detect_exception import LangDetectException

    DetectorFactory.seed = 0  # langdetect samples n-grams at random; seeded it is deterministic

    def keep(doc: str) -> bool:
        try:
            return detect(doc) == language
        except LangDetectException:  # no letters to judge by: not the language asked for
            return False

    return keep


def _exact_duplicate_filter():
    seen: set[bytes] = set()

    def keep(doc: str) -> bool:
        digest = hashlib.sha256(doc.encode("utf-8", "surrogatepass")).digest()
        if digest in seen:
            return False
        seen.add(digest)
        return True

    return keep


def shingles(doc: str) -> set[str]:
    """The character SHINGLE_CHARS-grams of a document, lowercased, whitespace collapsed."""
    text = _WHITESPACE.sub(" ", doc.lower()).strip()
    if len(text) <= SHINGLE_CHARS:
        return {text} if text else set()
    return {text[i : i + SHINGLE_CHARS] for i in range(len(text) - SHINGLE_CHARS + 1)}


def _near_duplicate_filter(threshold: float):
    from datasketch import MinHash, MinHashLSH

    # LSH finds the candidates; each is then confirmed by its estimated Jaccard similarity, so
    # the threshold is applied to the estimate itself. The bands are tuned for a lower
    # similarity than the threshold and weighted towards recall, so that LSH rarely misses a
    # pair above it (datasketch cannot band for thresholds near 1: fewer than 2 bands).
    index = MinHashLSH(
        threshold=max(min(threshold, 0.9) - LSH_MARGIN, 0.05),
        num_perm=MINHASH_PERMUTATIONS,
        weights=(0.2, 0.8),
    )
    kept: dict[str, MinHash] = {}

    def keep(doc: str) -> bool:
        grams = shingles(doc)
        if not grams:
            return True  # nothing to compare; an empty document is at most an exact duplicate
        minhash = MinHash(num_perm=MINHASH_PERMUTATIONS, seed=1)
        minhash.update_batch([g.encode("utf-8", "surrogatepass") for g in sorted(grams)])
        if any(minhash.jaccard(kept[key]) >= threshold for key in index.query(minhash)):
            return False
        key = str(len(kept))
        index.insert(key, minhash)
        kept[key] = minhash
        return True

    return keep
