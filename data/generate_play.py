"""Writes data/play/play.txt: a generated play-like text for the character-level LM experiment.

    python data/generate_play.py            # rewrites data/play/play.txt
    python data/generate_play.py DIR        # writes DIR/play.txt instead

Shipped with the repository (and checked by tests/test_shipped_experiments.py to be what this
script writes), so that experiments/shakespeare_char.yaml runs on a fresh clone with nothing to
download and no question of where the text came from: every word is chosen here, from the
word lists and line templates below, by a seeded generator, so the output is the same on every
machine and Python >= 3.11 (only `choice`, `randrange` and `sample` are used, whose results
for a given seed Python keeps stable).

The layout is Tiny Shakespeare's, so the experiment trains on the same kind of text with a
real corpus passed as `-o data.path=input.txt`: a speech is the speaker's name in capitals and
a colon on one line, then its verse lines; speeches, scene headings and stage directions are
separated by blank lines (runner/data/text.py makes each such paragraph one document).
(Tiny Shakespeare writes speaker names in title case; here they are in capitals, as printed
plays have them.) What a character model can learn from it:
- a closed cast whose names recur, in capitals before a colon and in title case when spoken to;
- who speaks to whom: speakers alternate within a scene, and an address follows the listener
  ("my liege" to the king, "madam" to the queen or a lady, "sirrah" to a guard or the fool);
- about two hundred words, repeated in fixed phrases ("doth", "my lord", "I pray thee");
- verse punctuation: each line starts with a capital, inner lines end in a comma, semicolon, colon
  or nothing; the speech ends in a full stop, or a question or exclamation mark after a question or
  an exclamation.
"""

from __future__ import annotations

import os
import random
import re
import sys
from pathlib import Path

SEED = 1623  # the First Folio's year
TARGET_BYTES = 180_000  # stop at the first speech boundary past this
OUT = Path(__file__).with_name("play") / "play.txt"

# (speaker name in capitals, proper name spoken by others or a lower-case role for those who
# have none, how others address them)
CAST = [
    ("KING ALDRIC", "Aldric", ["my liege", "my lord", "good my lord"]),
    ("QUEEN MAREN", "Maren", ["madam", "good madam", "my queen"]),
    ("PRINCE EDMER", "Edmer", ["my prince", "my lord", "sweet prince"]),
    ("LADY ROSALIND", "Rosalind", ["madam", "fair lady", "gentle lady"]),
    ("LORD CASSIAN", "Cassian", ["my lord", "good Cassian", "Cassian"]),
    ("LORD HALVARD", "Halvard", ["my lord", "good Halvard", "Halvard"]),
    ("SIR TOBIN", "Tobin", ["sir", "good Tobin", "Tobin"]),
    ("FRIAR ANSELM", "Anselm", ["good father", "holy father", "father"]),
    ("NURSE", "nurse", ["nurse", "good nurse"]),
    ("FOOL", "fool", ["fool", "sirrah", "knave"]),
    ("FIRST GUARD", "guard", ["fellow", "sirrah", "good fellow"]),
    ("SECOND GUARD", "guard", ["fellow", "sirrah", "good fellow"]),
    ("MESSENGER", "messenger", ["fellow", "good fellow", "sirrah"]),
]  # fmt: skip

NOUNS = [
    "crown", "sword", "heart", "night", "storm", "throne", "rose", "grave", "moon", "sea",
    "field", "tower", "gate", "oath", "letter", "ring", "blood", "honour", "soul", "fortune",
    "council", "army", "wind", "dawn", "grief", "love", "fear", "name", "word", "hand",
    "eye", "tongue", "face", "world", "heaven", "state", "kingdom", "war", "peace", "truth",
]  # fmt: skip
ADJECTIVES = [
    "cold", "bright", "noble", "bitter", "gentle", "proud", "false", "true", "sweet", "dark",
    "weary", "fair", "idle", "wild", "silent", "golden", "hollow", "honest", "cruel", "young",
]  # fmt: skip
VERBS = [
    "love", "fear", "keep", "guard", "seek", "break", "serve", "mend", "hold", "follow",
    "trust", "curse", "bless", "doubt", "wake", "hide", "find", "lose", "praise", "wrong",
]  # fmt: skip
POSSESSIVES = ["my", "thy", "his", "her", "our", "your"]
OBJECTS = ["thee", "me", "him", "her", "us", "them"]
NATURE = [
    "the winter sun", "a summer rose", "the morning star", "the raging sea", "a fallen leaf",
    "the evening sky", "a sleeping child", "the northern wind", "a candle's flame",
]  # fmt: skip
PLACES = [
    "the castle", "the tower", "the chapel", "the garden", "the gate", "the field",
    "the harbour", "the forest", "the council chamber", "the king's chamber",
]  # fmt: skip
TIMES = ["dawn", "night", "the morrow", "evening", "the bell", "the tide turns"]
OATHS = ["By heaven", "By my troth", "Upon my life", "By this hand", "As I am a gentleman"]

# Verse lines, without the punctuation at their end. {addr} is the listener's address, {name}
# someone else on stage; every other slot is a fresh draw from its word list.
STATEMENTS = [
    "O {adj} {noun}, how {adj} thou art",
    "The {noun} doth {verb} the {adj} {noun}",
    "I {verb} thee more than {noun} or {noun}",
    "{Addr}, the {noun} is {adj} and {adj}",
    "Go, {verb} the {noun} before {time}",
    "Thy {noun} hath made my {noun} {adj}",
    "Let not the {noun} {verb} thee, {addr}",
    "{oath}, I will {verb} the {noun}",
    "There is no {noun} so {adj} as {poss} {noun}",
    "When {noun} is {adj}, the {noun} is {adj}",
    "I know not why the {noun} should {verb} me",
    "Come, {addr}, we must away to {place}",
    "The {noun} of {poss} {noun} is {adj} as {nature}",
    "And {name} shall {verb} the {noun} no more",
    "I pray thee, {addr}, {verb} {obj} not",
    "For {poss} {noun} is {adj}, and {poss} {noun} {adj}",
    "My {noun} is {adj} as {nature}",
    "{name} doth {verb} the {noun} of {place}",
    "So {adj} a {noun} was never seen in {place}",
    "I will {verb} {obj} till {time}, {addr}",
    "Fie on the {noun}, and fie upon the {noun}",
    "Then {verb} {obj}, and {verb} {obj} with {poss} {noun}",
]  # fmt: skip
QUESTIONS = [
    "What {noun} is this that doth {verb} us",
    "Shall the {noun} be {adj} tonight",
    "Why dost thou {verb} the {noun}, {addr}",
    "Where is {name}, and where {poss} {noun}",
    "Wilt thou {verb} {obj} for {poss} {noun}",
    "Is {poss} {noun} so {adj}, {addr}",
    "Who shall {verb} the {noun} when {name} is gone",
    "Hast thou seen {name} in {place}",
]  # fmt: skip
EXCLAMATIONS = [
    "O {adj} {noun}",
    "Away, away, to {place}",
    "Alas, the {noun}",
    "{oath}, it is {adj}",
    "Woe to the {noun} of {name}",
]  # fmt: skip
REPLIES = [
    "Ay, {addr}.", "No, {addr}.", "I will, {addr}.", "Alas!", "What news?", "Away!",
    "It shall be done, {addr}.", "Even so, {addr}.", "Peace, {addr}!", "Farewell, {addr}.",
    "I know it, {addr}.", "Speak, {addr}.",
]  # fmt: skip
INNER_ENDS = [",", ",", ",", ";", "", ":"]
SCENE_PLACES = [
    "A hall in the castle.", "Before the city gate.", "The king's chamber.", "A garden.",
    "The chapel.", "A street.", "A field near the camp.", "The tower.", "The harbour.",
]  # fmt: skip
NUMERALS = ["I", "II", "III", "IV", "V"]


def fill(rng: random.Random, template: str, address: str, names: list[str]) -> str:
    """The template with each slot filled on its own (two {noun} are two draws), `address` for
    {addr}, one of `names` for {name}."""
    words = {
        "noun": NOUNS, "adj": ADJECTIVES, "verb": VERBS, "poss": POSSESSIVES, "obj": OBJECTS,
        "nature": NATURE, "place": PLACES, "time": TIMES, "oath": OATHS, "name": names,
        "addr": [address], "Addr": [address[0].upper() + address[1:]],
    }  # fmt: skip
    return re.sub(r"\{(\w+)\}", lambda slot: rng.choice(words[slot[1]]), template)


def speech(rng: random.Random, speaker: tuple, listener: tuple, cast: list[tuple]) -> str:
    """One speech: the speaker's name and a colon, then one to five verse lines, all of them
    addressing the listener the same way and naming only others of the scene who have a name."""
    address = rng.choice(listener[2])
    names = [person[1] for person in cast if person[1][0].isupper() and person is not speaker]
    names = names or [person[1] for person in CAST if person[1][0].isupper()]
    if rng.randrange(5) == 0:
        lines = [fill(rng, rng.choice(REPLIES), address, names)]
    else:
        lines = []
        for _ in range(rng.randrange(1, 6)):
            line = fill(rng, rng.choice(STATEMENTS), address, names)
            lines.append(line[0].upper() + line[1:] + rng.choice(INNER_ENDS))
        kind = rng.randrange(4)
        ending = rng.choice(QUESTIONS if kind == 0 else EXCLAMATIONS if kind == 1 else STATEMENTS)
        mark = "?" if kind == 0 else "!" if kind == 1 else "."
        line = fill(rng, ending, address, names)
        lines.append(line[0].upper() + line[1:] + mark)
    return f"{speaker[0]}:\n" + "\n".join(lines)


def scene(rng: random.Random, act: int, number: int) -> list[str]:
    """A scene's paragraphs: its heading, an entrance, speeches among two to four, an exit."""
    cast = rng.sample(CAST, rng.randrange(2, 5))
    speakers = [person[0] for person in cast]
    entering = ", ".join(speakers[:-1]) + f" and {speakers[-1]}"
    paragraphs = [
        f"ACT {NUMERALS[act]}. SCENE {NUMERALS[number]}. {rng.choice(SCENE_PLACES)}",
        f"Enter {entering}.",
    ]
    speaker = rng.choice(cast)
    for _ in range(rng.randrange(8, 20)):
        listener = rng.choice([person for person in cast if person is not speaker])
        paragraphs.append(speech(rng, speaker, listener, cast))
        # most often the one spoken to answers; otherwise anyone but the last speaker
        others = [person for person in cast if person is not speaker]
        speaker = listener if rng.randrange(3) else rng.choice(others)
    paragraphs.append("Exeunt.")
    return paragraphs


def generate(target_bytes: int = TARGET_BYTES, seed: int = SEED) -> str:
    """The text: five acts of five scenes, then again from act I (the next play), until it
    passes `target_bytes`; it ends after a scene."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    size, act, number = 0, 0, 0
    while size < target_bytes:
        for paragraph in scene(rng, act % len(NUMERALS), number):
            paragraphs.append(paragraph)
            size += len(paragraph.encode("utf-8")) + 2
        number += 1
        if number == len(NUMERALS):
            act, number = act + 1, 0
    return "\n\n".join(paragraphs) + "\n"


def write(path: Path = OUT, target_bytes: int = TARGET_BYTES, seed: int = SEED) -> Path:
    """Write the play to `path`, whole or not at all (temporary file, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(generate(target_bytes, seed), encoding="utf-8")
    os.replace(temporary, path)
    return path


if __name__ == "__main__":
    written = write(Path(sys.argv[1]) / OUT.name if len(sys.argv) > 1 else OUT)
    print(f"{written}: {written.stat().st_size} bytes")
