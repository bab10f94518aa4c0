"""Writes data/aspect/: movie-review sentences labelled by what the deciding clause is about.

    python data/generate_aspect.py               # rewrites data/aspect/aspect.{story,cast,craft}

The second task of experiments/multitask.yaml (the first is data/sentiment). The sentences
are made the way generate_sentiment.py makes its own, from its word lists and patterns, by a
seeded generator (the same bytes on every machine; a test checks the shipped files), but the
label is the part of the film the sentence's deciding clause talks about: story (plot,
script, dialogue, ...), cast (acting, characters, humour) or craft (music, camera, editing,
direction). In "X is ADJ1 , but Y is ADJ2 ." the deciding clause is the second, as for the
sentiment task, so both tasks need the model to find the same clause: what a shared encoder
can learn once for both. Every subject appears in every pattern and with both polarities.
"""

from __future__ import annotations

import random
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # generate_sentiment, beside this file

from generate_sentiment import (  # noqa: E402
    DEGREES,
    NEGATIVE,
    OPENERS,
    POSITIVE,
    VERBS,
    distinct,
    write_classes,
)

SEED = 20261
PER_CLASS = 600
OUT = Path(__file__).with_name("aspect")
SUBJECTS = {
    "story": [
        "the plot", "the script", "the dialogue", "the story", "the ending", "the pacing",
        "the first hour", "the finale",
    ],
    "cast": [
        "the acting", "the cast", "the main character", "the lead performance", "the humour",
        "the villain", "the supporting cast",
    ],
    "craft": [
        "the soundtrack", "the score", "the photography", "the set design", "the editing",
        "the direction", "the costume design",
    ],
}  # fmt: skip


def sentence(rng: random.Random, label: str) -> str:
    """One sentence whose deciding clause is about a subject of class `label`."""
    pattern = rng.randrange(4)
    subject = rng.choice(SUBJECTS[label])
    other = rng.choice(SUBJECTS[rng.choice([k for k in SUBJECTS if k != label])])
    verb, degree, opener = rng.choice(VERBS), rng.choice(DEGREES), rng.choice(OPENERS)
    first, second = rng.choice(POSITIVE + NEGATIVE), rng.choice(POSITIVE + NEGATIVE)
    if pattern == 0:  # plain
        text = f"{subject} {verb} {degree}{first} ."
    elif pattern == 1:  # negated
        text = f"{subject} {verb} not {degree}{first} ."
    else:  # contrast: the second clause decides, the first is about another class
        conjunction = "but" if pattern == 2 else "yet"
        text = f"{other} {verb} {first} , {conjunction} {subject} {verb} {degree}{second} ."
    return opener + text


def generate(per_class: int = PER_CLASS, seed: int = SEED) -> dict[str, list[str]]:
    """{label: sentences}: `per_class` distinct sentences for each of story, cast, craft."""
    rng = random.Random(seed)
    return {label: distinct(per_class, partial(sentence, rng, label)) for label in SUBJECTS}


def write(folder: Path = OUT, per_class: int = PER_CLASS, seed: int = SEED) -> list[Path]:
    """Write folder/aspect.<label> for each label, each whole or not at all (temporary, rename)."""
    return write_classes(folder, "aspect", generate(per_class, seed))


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT):
        print(f"{path}: {path.stat().st_size} bytes")
