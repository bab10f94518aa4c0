"""Writes data/sentiment/: a small synthetic corpus of movie-review sentences, two classes.

    python data/generate_sentiment.py            # rewrites data/sentiment/sentiment.pos, .neg

Shipped with the repository (and checked by tests/test_shipped_experiments.py to be what this
script writes), so that the classification experiments run on a fresh clone with nothing to
download and no licence question: every sentence is made here from word lists, by a seeded
generator, so the output is the same on every machine and Python >= 3.11.

The format is rt-polarity's (Pang and Lee, 2005): one file per class, one lower-cased sentence
per line, punctuation set off by spaces. The label follows from the words, but not from any
single word, so a model has to read the sentence:
- "X is ADJ ." takes ADJ's polarity, "X is not ADJ ." the opposite;
- "X is ADJ1 , but Y is ADJ2 ." and "... , yet ..." take the clause after the conjunction;
- "X is ADJ1 and Y is ADJ2 ." has two adjectives of the same polarity.
Every pattern appears in both classes, so no template gives the class away, and a bag of
words cannot tell "A is dull , but B is witty ." from "A is witty , but B is dull .": the same
words in another order; a model that reads word order can.
"""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

SEED = 20260
PER_CLASS = 2000
OUT = Path(__file__).with_name("sentiment")

ASPECTS = [
    "the plot", "the acting", "the script", "the soundtrack", "the direction", "the dialogue",
    "the cast", "the pacing", "the ending", "the photography", "this film", "the story",
    "the main character", "the set design", "the humour", "the lead performance", "the editing",
    "the first hour", "the finale", "the score",
]  # fmt: skip
POSITIVE = [
    "brilliant", "moving", "sharp", "charming", "gripping", "beautiful", "clever", "funny",
    "tender", "vivid", "superb", "warm", "inventive", "delightful", "engaging", "heartfelt",
    "stunning", "witty", "graceful", "lively",
]  # fmt: skip
NEGATIVE = [
    "dull", "tedious", "clumsy", "flat", "lifeless", "predictable", "bland", "messy",
    "shallow", "forgettable", "sluggish", "awkward", "hollow", "tiresome", "muddled", "stale",
    "cheap", "grating", "lazy", "joyless",
]  # fmt: skip
DEGREES = ["", "", "very ", "truly ", "rather ", "quite ", "often ", "mostly "]
VERBS = ["is", "is", "feels", "seems", "looks"]
OPENERS = ["", "", "", "frankly , ", "in the end , ", "honestly , ", "overall , "]


def sentence(rng: random.Random, positive: bool) -> str:
    """One sentence whose polarity is `positive`, in one of the patterns of the docstring."""
    pattern = rng.randrange(5)
    aspect, other = rng.sample(ASPECTS, 2)
    verb, degree, opener = rng.choice(VERBS), rng.choice(DEGREES), rng.choice(OPENERS)
    same, opposite = (POSITIVE, NEGATIVE) if positive else (NEGATIVE, POSITIVE)
    if pattern == 0:  # plain
        text = f"{aspect} {verb} {degree}{rng.choice(same)} ."
    elif pattern == 1:  # negated: the opposite adjective
        text = f"{aspect} {verb} not {degree}{rng.choice(opposite)} ."
    elif pattern in (2, 3):  # contrast: the second clause decides
        conjunction = "but" if pattern == 2 else "yet"
        text = (
            f"{aspect} {verb} {rng.choice(opposite)} , {conjunction} "
            f"{other} {verb} {degree}{rng.choice(same)} ."
        )
    else:  # agreement
        first, second = rng.sample(same, 2)
        text = f"{aspect} {verb} {first} and {other} {verb} {degree}{second} ."
    return opener + text


def generate(per_class: int = PER_CLASS, seed: int = SEED) -> dict[str, list[str]]:
    """{"pos": sentences, "neg": sentences}: `per_class` distinct sentences each."""
    rng = random.Random(seed)
    return {
        label: distinct(per_class, partial(sentence, rng, positive))
        for label, positive in (("pos", True), ("neg", False))
    }


def write(folder: Path = OUT, per_class: int = PER_CLASS, seed: int = SEED) -> list[Path]:
    """Write folder/sentiment.pos and .neg, each whole or not at all (temporary file, rename)."""
    return write_classes(folder, "sentiment", generate(per_class, seed))


def distinct(count: int, draw: Callable[[], str]) -> list[str]:
    """The first `count` distinct results of draw(), in the order drawn (generate_aspect too)."""
    seen: dict[str, None] = {}  # insertion-ordered set
    while len(seen) < count:
        seen.setdefault(draw())
    return list(seen)


def write_classes(folder: Path, prefix: str, classes: dict[str, list[str]]) -> list[Path]:
    """Write folder/<prefix>.<label>, one sentence a line, for each label of `classes`, each
    whole or not at all (temporary file, rename); generate_aspect writes its files with it too."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for label, lines in classes.items():
        path = folder / f"{prefix}.{label}"
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(temporary, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT):
        print(f"{path}: {path.stat().st_size} bytes")
