"""EDA text augmentation for classification training data (Wei and Zou, 2019, "EDA: Easy Data
Augmentation Techniques for Boosting Performance on Text Classification Tasks").

Four operations on a whitespace-split sentence of n words, each at a rate alpha:
    synonym_replacement  each word that has a synonym is replaced by one with probability alpha
    random_insertion     about alpha * n times, a synonym of a random word is inserted at a
                         random position
    random_swap          about alpha * n times, two random words swap places
    random_deletion      each word is deleted with probability alpha (one word always stays)
As in the paper, each augmented copy is made by one operation, chosen at random among those with
a rate above 0. Synonyms come from runner.data.synonyms (shipped; nothing is downloaded).
Every copy is a pure function of (seed, example index, copy index), so the augmented training
set is the same whatever the order or the number of examples before it.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass

from runner.data.synonyms import synonym_table

_PUNCTUATION = string.punctuation + "“”‘’«»"


@dataclass(frozen=True)
class EdaRates:
    synonym_replacement: float = 0.0
    random_insertion: float = 0.0
    random_swap: float = 0.0
    random_deletion: float = 0.0

    def enabled(self) -> list[str]:
        """The operations with a rate above 0, in a fixed order."""
        return [name for name, rate in vars(self).items() if rate > 0]


def augment_examples(
    texts: Sequence[str], rates: EdaRates, copies: int, seed: int
) -> list[tuple[int, str]]:
    """(index of the source example, augmented text) for `copies` copies of every text."""
    operations = rates.enabled()
    if not operations or copies <= 0:
        return []
    out = []
    for index, text in enumerate(texts):
        for copy in range(copies):
            rng = random.Random(f"eda:{seed}:{index}:{copy}")  # str seeds: no PYTHONHASHSEED
            operation = rng.choice(operations)
            out.append((index, eda(text, operation, getattr(rates, operation), rng)))
    return out


def eda(text: str, operation: str, rate: float, rng: random.Random) -> str:
    """`text` changed by one EDA operation at `rate`."""
    words = text.split()
    if not words:
        return text
    if operation == "synonym_replacement":
        words = [
            _replace(word, rng) if _synonyms(word) and rng.random() < rate else word
            for word in words
        ]
    elif operation == "random_insertion":
        with_synonyms = [word for word in words if _synonyms(word)]
        for _ in range(_binomial(len(words), rate, rng) if with_synonyms else 0):
            new = rng.choice(_synonyms(rng.choice(with_synonyms)))
            words.insert(rng.randrange(len(words) + 1), new)
    elif operation == "random_swap":
        for _ in range(_binomial(len(words), rate, rng) if len(words) > 1 else 0):
            i, j = rng.sample(range(len(words)), 2)
            words[i], words[j] = words[j], words[i]
    elif operation == "random_deletion":
        kept = [word for word in words if rng.random() >= rate]
        words = kept or [rng.choice(words)]
    else:
        raise ValueError(f"unknown EDA operation {operation!r}")
    return " ".join(words)


def _binomial(n: int, p: float, rng: random.Random) -> int:
    return sum(rng.random() < p for _ in range(n))


def _core(word: str) -> tuple[str, str, str]:
    """(leading punctuation, the word in lower case, trailing punctuation)."""
    stripped = word.strip(_PUNCTUATION)
    if not stripped:
        return word, "", ""
    start = word.index(stripped)
    return word[:start], stripped.lower(), word[start + len(stripped) :]


def _synonyms(word: str) -> tuple[str, ...]:
    return synonym_table().get(_core(word)[1], ())


def _replace(word: str, rng: random.Random) -> str:
    lead, core, trail = _core(word)
    new = rng.choice(synonym_table()[core])
    stripped = word[len(lead) : len(word) - len(trail)]
    if stripped[:1].isupper():
        new = new.upper() if stripped.isupper() and len(stripped) > 1 else new.capitalize()
    return f"{lead}{new}{trail}"
