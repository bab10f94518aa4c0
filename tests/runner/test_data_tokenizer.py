"""TextTokenizer: BPE and char training, round trips, serialisation (runner.data.tokenizer)."""

from pathlib import Path

import pytest

from runner.data.tokenizer import SPECIAL_TOKENS, TextTokenizer
from runner.errors import DataError

TRAIN = [
    "def add(a, b):\n\treturn a + b\n",
    "The quick brown fox jumps over the lazy dog.\n" * 5,
    "Pack my box with five dozen liquor jugs!\n" * 5,
]
UNSEEN = "Ünïcode ✓ and\ttabs\nand a literal <eos> and <pad> in text\n"


@pytest.fixture(scope="module")
def bpe() -> TextTokenizer:
    return TextTokenizer.train_bpe(TRAIN, vocab_size=300)


@pytest.fixture(scope="module")
def char() -> TextTokenizer:
    return TextTokenizer.train_char(TRAIN)


def test_special_tokens_take_the_first_ids_with_pad_zero(bpe, char):
    for tok in (bpe, char):
        assert [tok.backend.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
        assert (tok.pad_id, tok.eos_id, tok.cls_id, tok.sep_id) == (0, 2, 3, 4)


def test_bpe_round_trips_any_text_byte_for_byte(bpe):
    for text in [*TRAIN, UNSEEN]:
        assert bpe.decode(bpe.encode(text)) == text


def test_bpe_merges_frequent_text_into_fewer_tokens_than_bytes(bpe):
    text = "The quick brown fox jumps over the lazy dog.\n"
    assert len(bpe.encode(text)) < len(text.encode()) / 2


def test_bpe_vocab_size_is_the_requested_one():
    texts = [f"word{i} " * 3 for i in range(500)]
    assert TextTokenizer.train_bpe(texts, vocab_size=400).vocab_size == 400


def test_bpe_vocab_below_the_byte_alphabet_is_an_error_naming_the_minimum():
    with pytest.raises(DataError, match=r"data.vocab_size.*at least 261"):
        TextTokenizer.train_bpe(TRAIN, vocab_size=100)


def test_char_round_trips_text_of_seen_characters_including_newlines(char):
    text = "def fox(box):\n\treturn box + b\n\n"
    ids = char.encode(text)
    assert len(ids) == len(text)
    assert char.decode(ids) == text


def test_char_maps_unseen_characters_to_unk(char):
    assert char.encode("a✓b")[1] == char.backend.token_to_id("<unk>")
    assert char.decode(char.encode("a✓b")) == "a<unk>b"


def test_literal_special_token_text_is_encoded_as_characters(char, bpe):
    assert char.eos_id not in char.encode("x<eos>y")
    assert bpe.eos_id not in bpe.encode("x<eos>y")


def test_json_round_trip_gives_the_same_ids(bpe, char):
    for tok in (bpe, char):
        again = TextTokenizer.from_json(tok.to_json())
        assert again.encode(UNSEEN) == tok.encode(UNSEEN)
        assert (again.kind, again.vocab_size, again.eos_id) == (
            tok.kind,
            tok.vocab_size,
            tok.eos_id,
        )


def test_save_pretrained_dir_loads_with_the_same_ids_and_specials(bpe, tmp_path: Path):
    from transformers import AutoTokenizer

    bpe.save_pretrained(tmp_path)
    hf = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert hf(UNSEEN, add_special_tokens=False)["input_ids"] == bpe.encode(UNSEEN)
    loaded = TextTokenizer.from_pretrained(tmp_path)
    assert loaded.kind == "pretrained"
    assert loaded.encode(UNSEEN) == bpe.encode(UNSEEN)
    assert (loaded.pad_id, loaded.eos_id, loaded.cls_id, loaded.sep_id) == (0, 2, 3, 4)


def test_pretrained_without_pad_or_cls_falls_back_on_eos(bpe, tmp_path: Path):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(bpe.backend.to_str())
    PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>").save_pretrained(tmp_path)
    loaded = TextTokenizer.from_pretrained(tmp_path)
    assert (loaded.pad_id, loaded.eos_id, loaded.cls_id, loaded.sep_id) == (2, 2, 2, 2)


def test_pretrained_from_a_missing_directory_is_an_error(tmp_path: Path):
    with pytest.raises(DataError, match="model.pretrained.*not a directory"):
        TextTokenizer.from_pretrained(tmp_path / "absent")
