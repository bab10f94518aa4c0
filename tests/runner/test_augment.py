"""EDA augmentation of classification training data (runner.data.augment)."""

import random

import numpy as np
import pytest
from test_data_classify import classify_config, reviews, write_csv

from runner.config import config_from_dict
from runner.data import prepare_data
from runner.data.augment import EdaRates, augment_examples, eda
from runner.data.synonyms import synonym_table
from runner.errors import ConfigError

SENTENCE = "the good movie was very funny and the story was clear but the ending was slow"
ONLY_DELETION = EdaRates(random_deletion=0.2)


def test_the_same_seed_gives_the_same_copies_and_another_seed_others():
    texts = [SENTENCE, "a big fast car", "happy people"]
    rates = EdaRates(0.3, 0.3, 0.3, 0.3)
    first = augment_examples(texts, rates, copies=3, seed=7)
    assert first == augment_examples(texts, rates, copies=3, seed=7)
    assert first != augment_examples(texts, rates, copies=3, seed=8)
    assert [source for source, _ in first] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # a copy depends only on (seed, index, copy): adding an example does not change the others
    assert augment_examples(texts[:2], rates, copies=3, seed=7) == first[:6]


@pytest.mark.parametrize("rate", [0.1, 0.3])
def test_each_operation_changes_about_its_rate_of_the_words(rate):
    words = SENTENCE.split()
    rng = random.Random(0)
    trials = 400
    replaceable = [w for w in words if w in synonym_table()]
    replaced = deleted = inserted = 0
    for _ in range(trials):
        out = eda(SENTENCE, "synonym_replacement", rate, rng).split()
        replaced += sum(a != b for a, b in zip(words, out, strict=True))
        deleted += len(words) - len(eda(SENTENCE, "random_deletion", rate, rng).split())
        inserted += len(eda(SENTENCE, "random_insertion", rate, rng).split()) - len(words)
    assert replaced / (trials * len(replaceable)) == pytest.approx(rate, rel=0.15)
    assert deleted / (trials * len(words)) == pytest.approx(rate, rel=0.15)
    assert inserted / (trials * len(words)) == pytest.approx(rate, rel=0.15)


def test_operations_keep_what_they_should():
    rng = random.Random(1)
    swapped = eda(SENTENCE, "random_swap", 0.3, rng)
    assert sorted(swapped.split()) == sorted(SENTENCE.split()) and swapped != SENTENCE
    inserted = eda(SENTENCE, "random_insertion", 0.3, rng).split()
    new_words = list(inserted)
    for word in SENTENCE.split():
        new_words.remove(word)  # every original word is still there, in order
    assert new_words and all(w in synonym_table() for w in new_words)
    assert eda("Good!", "synonym_replacement", 1.0, rng) in {
        s.capitalize() + "!" for s in synonym_table()["good"]
    }
    assert eda("one two", "random_deletion", 1.0, rng) in {"one", "two"}  # one always stays


def val_texts(data) -> list[str]:
    val, tokenizer = data.val, data.tokenizer
    return [
        tokenizer.decode(val.tokens[val.offsets[i] + 1 : val.offsets[i + 1] - 1].tolist())
        for i in range(len(val.labels))
    ]


def test_training_data_gets_copies_and_validation_stays_as_without(tmp_path):
    path = write_csv(tmp_path / "reviews.csv", reviews())
    plain = prepare_data(classify_config(path, tmp_path / "a"))
    augmented = prepare_data(
        classify_config(
            path,
            tmp_path / "b",
            augment_copies=2,
            augment_synonym_replacement=0.2,
            augment_random_deletion=0.2,
        )
    )
    stats = augmented.stats
    assert stats["train_examples_augmented"] == 2 * plain.stats["train_examples"]
    assert stats["train_examples"] == 3 * plain.stats["train_examples"]
    assert len(augmented.train.labels) == stats["train_examples"]
    # labels follow their source example: each class triples
    assert np.array_equal(np.bincount(augmented.train.labels), 3 * np.bincount(plain.train.labels))
    # the same validation texts (the tokenizer, trained on the augmented training texts,
    # may number its tokens differently)
    assert val_texts(augmented) == val_texts(plain)
    assert np.array_equal(augmented.val.labels, plain.val.labels)
    # and it is reproducible: a second preparation (no cache) gives the same training tokens
    again = prepare_data(
        classify_config(
            path,
            tmp_path / "c",
            augment_copies=2,
            augment_synonym_replacement=0.2,
            augment_random_deletion=0.2,
        )
    )
    assert np.array_equal(again.train.tokens, augmented.train.tokens)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["data.augment_random_swap=1.5"], "data.augment_random_swap"),
        (["data.augment_copies=2"], "data.augment_copies"),  # no rate set
        (["data.augment_copies=-1"], "data.augment_copies"),
    ],
)
def test_bad_augment_values_name_their_key(overrides, key):
    with pytest.raises(ConfigError, match=rf"\({key}\)"):
        config_from_dict({"task": "classify"}, overrides)


def test_augmentation_is_refused_for_lm():
    with pytest.raises(ConfigError, match="classify only"):
        config_from_dict({"task": "lm"}, ["data.augment_copies=1", "data.augment_random_swap=0.1"])
