"""TextTokenizer: byte-level BPE or characters trained on the training split, or a pretrained one.

All three are a `tokenizers.Tokenizer` underneath, so every kind serialises the same way:
to_json()/from_json() for checkpoints, save_pretrained()/from_pretrained() for transformers.

Example:
    >>> tok = TextTokenizer.train_char(["hello\\n"])
    >>> tok.decode(tok.encode("hello\\n"))
    'hello\\n'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from runner.errors import DataError

PAD, UNK, EOS, CLS, SEP = "<pad>", "<unk>", "<eos>", "<cls>", "<sep>"
SPECIAL_TOKENS = (PAD, UNK, EOS, CLS, SEP)  # ids 0..4 in our own tokenizers
BYTE_ALPHABET_SIZE = 256
MIN_BPE_VOCAB_SIZE = BYTE_ALPHABET_SIZE + len(SPECIAL_TOKENS)


class TextTokenizer:
    """Text <-> token ids, with the special ids the data pipeline and the models need."""

    def __init__(
        self, backend: Tokenizer, *, kind: str, pad_id: int, eos_id: int, cls_id: int, sep_id: int
    ) -> None:
        self.backend = backend
        # Text is data: a literal "<eos>" in a corpus is encoded as characters, never as the
        # special token, so documents cannot forge separators. (This flag is not serialised.)
        self.backend.encode_special_tokens = True
        self.kind = kind
        self.pad_id = pad_id
        self.eos_id = eos_id
        self.cls_id = cls_id
        self.sep_id = sep_id

    @property
    def vocab_size(self) -> int:
        """Number of token ids, special tokens included."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`, without any special tokens added."""
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """encode() of many texts, in parallel threads."""
        encodings = self.backend.encode_batch_fast(list(texts), add_special_tokens=False)
        return [encoding.ids for encoding in encodings]

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        """The text of `ids`; special tokens are shown unless skipped."""
        return self.backend.decode(list(ids), skip_special_tokens=skip_special_tokens)

    # ------------------------------------------------------------------ building

    @classmethod
    def train(cls, kind: str, texts: Iterable[str], vocab_size: int) -> TextTokenizer:
        """A tokenizer of data.tokenizer's `kind` trained on `texts`: "bpe" (vocab_size ids) or
        "char"."""
        return cls.train_bpe(texts, vocab_size) if kind == "bpe" else cls.train_char(texts)

    @classmethod
    def train_bpe(cls, texts: Iterable[str], vocab_size: int) -> TextTokenizer:
        """Byte-level BPE (GPT-2 style) with `vocab_size` ids, trained on `texts`."""
        if vocab_size < MIN_BPE_VOCAB_SIZE:
            raise DataError(
                f"data.vocab_size: byte-level BPE needs at least {MIN_BPE_VOCAB_SIZE} "
                f"(256 bytes + {len(SPECIAL_TOKENS)} special tokens), got {vocab_size}; "
                "raise it or use data.tokenizer=char"
            )
        backend = Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # any byte stays encodable
            show_progress=False,
        )
        backend.train_from_iterator(texts, trainer)
        return cls._with_our_specials(backend, kind="bpe")

    @classmethod
    def train_char(cls, texts: Iterable[str]) -> TextTokenizer:
        """One id per character seen in `texts` (sorted); other characters map to <unk>."""
        chars = sorted(set().union(*(set(text) for text in texts)))
        vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
        for char in chars:
            vocab.setdefault(char, len(vocab))
        backend = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
        # Each character, newline included, is its own piece; Fuse joins them back without spaces.
        backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
        backend.decoder = decoders.Fuse()
        backend.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL_TOKENS])
        return cls._with_our_specials(backend, kind="char")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> TextTokenizer:
        """The tokenizer saved in a local `directory` (transformers' save_pretrained layout).

        Special ids come from the tokenizer where it has them; missing ones fall back on the
        closest role (eos <- sep <- bos, cls <- bos, pad <- eos), as GPT-2 or BERT need.
        """
        if not Path(directory).is_dir():
            raise DataError(
                f"model.pretrained: {directory} is not a directory; point it at a folder written "
                "by save_pretrained (nothing is downloaded)"
            )
        from transformers import AutoTokenizer  # slow import, only needed on this path

        try:
            hf = AutoTokenizer.from_pretrained(
                str(directory), local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError) as err:
            raise DataError(
                f"model.pretrained: no loadable tokenizer in {directory} ({err}); "
                "save one there with save_pretrained()"
            ) from None
        backend = getattr(hf, "backend_tokenizer", None)
        if backend is None:
            raise DataError(
                f"model.pretrained: the tokenizer in {directory} has no `tokenizers` backend "
                "(tokenizer.json); save it as a fast tokenizer"
            )
        eos = _first_id(hf.eos_token_id, hf.sep_token_id, hf.bos_token_id)
        sep = _first_id(hf.sep_token_id, eos)
        cls_ = _first_id(hf.cls_token_id, hf.bos_token_id, eos)
        pad = _first_id(hf.pad_token_id, eos)
        if eos is None:
            raise DataError(
                f"model.pretrained: the tokenizer in {directory} defines none of eos, sep or bos "
                "tokens; set eos_token on it and save it again"
            )
        return cls(
            Tokenizer.from_str(backend.to_str()),
            kind="pretrained",
            pad_id=pad,
            eos_id=eos,
            cls_id=cls_,
            sep_id=sep,
        )

    @classmethod
    def _with_our_specials(cls, backend: Tokenizer, kind: str) -> TextTokenizer:
        ids = {token: backend.token_to_id(token) for token in SPECIAL_TOKENS}
        return cls(
            backend, kind=kind, pad_id=ids[PAD], eos_id=ids[EOS], cls_id=ids[CLS], sep_id=ids[SEP]
        )

    # ------------------------------------------------------------------ serialising

    def to_json(self) -> str:
        """The whole tokenizer as one JSON string (for checkpoints and the data cache)."""
        return json.dumps(
            {
                "kind": self.kind,
                "special_ids": self._special_ids(),
                "tokenizer": json.loads(self.backend.to_str()),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> TextTokenizer:
        """The tokenizer that to_json() wrote."""
        data = json.loads(text)
        backend = Tokenizer.from_str(json.dumps(data["tokenizer"]))
        return cls(backend, kind=data["kind"], **data["special_ids"])

    def fingerprint(self) -> str:
        """A sha256 of everything that decides the ids (for cache keys)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def save_pretrained(self, directory: str | Path) -> None:
        """Write a tokenizer that transformers.AutoTokenizer.from_pretrained(directory) loads."""
        from transformers import PreTrainedTokenizerFast  # slow import, only needed on this path

        names = {role: self.backend.id_to_token(i) for role, i in self._special_ids().items()}
        unk = UNK if self.backend.token_to_id(UNK) is not None else None
        hf = PreTrainedTokenizerFast(
            tokenizer_object=Tokenizer.from_str(self.backend.to_str()),
            pad_token=names["pad_id"],
            eos_token=names["eos_id"],
            cls_token=names["cls_id"],
            sep_token=names["sep_id"],
            unk_token=unk,
            split_special_tokens=True,  # as in encode(): "<eos>" in text stays text
        )
        hf.save_pretrained(str(directory))

    def _special_ids(self) -> dict[str, int]:
        return {
            "pad_id": self.pad_id,
            "eos_id": self.eos_id,
            "cls_id": self.cls_id,
            "sep_id": self.sep_id,
        }


def _first_id(*candidates: int | None) -> int | None:
    return next((c for c in candidates if c is not None), None)
