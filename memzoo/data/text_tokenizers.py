"""Tokenizers fitted on a user's texts, saved as JSON next to a checkpoint's weights.

Three kinds, one interface (``encode``, ``decode``, ``vocab_size``, ``save``):

- ``"bpe"``: byte-level BPE trained with Hugging Face ``tokenizers`` (the ``apps`` extra). Any
  text round-trips exactly (every byte is in the initial alphabet); saved in the HF
  ``tokenizer.json`` format, so ``tokenizers.Tokenizer.from_file`` reads it too.
- ``"char"``: one token per character seen in training (pure Python); unseen characters map
  to ``<unk>``.
- ``"word"``: one token per whitespace-separated word seen in training (pure Python);
  decoding joins words with single spaces.

Every kind puts the same special tokens first: ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2,
``<eos>`` 3. ``encode`` never adds them; models add BOS/EOS where they need them.

>>> tok = fit_tokenizer("char", ["abba", "cab"])
>>> tok.encode("bad"), tok.vocab_size
([5, 4, 1], 7)
>>> tok.decode(tok.encode("abc"))
'abc'
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

import torch

from memzoo.errors import ConfigError, MemzooError
from memzoo.files import write_file
from memzoo.parsing import load_json_text

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
KINDS = ("bpe", "char", "word")
FORMAT_KEY = "memzoo_tokenizer"  # marks memzoo's own JSON format (char / word)


class TextTokenizer(Protocol):
    kind: str

    @property
    def vocab_size(self) -> int: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Iterable[int]) -> str: ...

    def save(self, path: str | Path) -> Path: ...


class SymbolTokenizer:
    """Character- or word-level vocabulary: specials first, then symbols by falling frequency
    (ties in code-point order), so fitting is deterministic."""

    def __init__(self, kind: str, symbols: list[str]):
        if kind not in ("char", "word"):
            raise ConfigError(f"SymbolTokenizer kind must be 'char' or 'word', got {kind!r}")
        self.kind = kind
        self.symbols = list(SPECIAL_TOKENS) + [s for s in symbols if s not in SPECIAL_TOKENS]
        self.index = {s: i for i, s in enumerate(self.symbols)}

    @classmethod
    def fit(cls, kind: str, texts: Iterable[str], max_vocab: int | None = None) -> SymbolTokenizer:
        counts = Counter(s for text in texts for s in cls._split(kind, text))
        ranked = sorted(counts, key=lambda s: (-counts[s], s))
        if max_vocab is not None:
            ranked = ranked[: max(0, max_vocab - len(SPECIAL_TOKENS))]
        return cls(kind, ranked)

    @staticmethod
    def _split(kind: str, text: str) -> list[str]:
        return list(text) if kind == "char" else text.split()

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        return [self.index.get(s, UNK_ID) for s in self._split(self.kind, text)]

    def decode(self, ids: Iterable[int]) -> str:
        parts = [self.symbols[i] for i in ids if len(SPECIAL_TOKENS) <= i < len(self.symbols)]
        return ("" if self.kind == "char" else " ").join(parts)

    def save(self, path: str | Path) -> Path:
        return write_file(
            path, json.dumps({FORMAT_KEY: self.kind, "symbols": self.symbols}, ensure_ascii=False)
        )


class BPETokenizer:
    """Byte-level BPE from Hugging Face ``tokenizers``; wraps a ``tokenizers.Tokenizer``."""

    kind = "bpe"

    def __init__(self, hf_tokenizer):
        self.hf = hf_tokenizer

    @classmethod
    def fit(cls, texts: Iterable[str], vocab_size: int) -> BPETokenizer:
        tk = _hf_tokenizers()
        alphabet = tk.pre_tokenizers.ByteLevel.alphabet()
        if vocab_size < len(alphabet) + len(SPECIAL_TOKENS):
            raise ConfigError(
                f"vocab_size={vocab_size} is too small for byte-level BPE: it needs at least "
                f"{len(alphabet) + len(SPECIAL_TOKENS)} (256 bytes + {len(SPECIAL_TOKENS)} specials)"
            )
        hf = tk.Tokenizer(tk.models.BPE(unk_token="<unk>"))
        hf.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
        hf.decoder = tk.decoders.ByteLevel()
        trainer = tk.trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),  # ids 0..3, in this order
            initial_alphabet=alphabet,
            show_progress=False,
        )
        hf.train_from_iterator(list(texts), trainer)
        return cls(hf)

    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=True)

    def save(self, path: str | Path) -> Path:
        return write_file(path, self.hf.to_str())


def _hf_tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise MemzooError(
            "the 'bpe' tokenizer needs Hugging Face tokenizers: pip install 'memzoo[apps]' "
            "(or choose tokenizer=char / tokenizer=word)"
        ) from None
    return tokenizers


def fit_tokenizer(kind: str, texts: Iterable[str], vocab_size: int = 2000) -> TextTokenizer:
    """A tokenizer of ``kind`` (``"bpe"``, ``"char"``, ``"word"``) fitted on ``texts``.

    ``vocab_size`` is the BPE vocabulary size and the cap of the char/word vocabulary
    (the most frequent symbols are kept), special tokens included.
    """
    if kind not in KINDS:
        raise ConfigError(f"tokenizer must be one of {list(KINDS)}, got {kind!r}")
    if kind == "bpe":
        return BPETokenizer.fit(texts, vocab_size)
    return SymbolTokenizer.fit(kind, texts, vocab_size)


def load_tokenizer(path: str | Path) -> TextTokenizer:
    """A tokenizer saved by ``save`` (memzoo's char/word JSON or an HF ``tokenizer.json``)."""
    path = Path(path)
    if not path.is_file():
        raise MemzooError(f"{path}: tokenizer file does not exist")
    try:
        data = load_json_text(path.read_text(encoding="utf-8"), str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise MemzooError(f"{path}: not a tokenizer JSON file: {err}") from None
    if isinstance(data, dict) and FORMAT_KEY in data:
        symbols = data["symbols"]
        if list(symbols[: len(SPECIAL_TOKENS)]) != list(SPECIAL_TOKENS):
            raise MemzooError(f"{path}: the first symbols must be {list(SPECIAL_TOKENS)}")
        return SymbolTokenizer(data[FORMAT_KEY], symbols[len(SPECIAL_TOKENS) :])
    if isinstance(data, dict) and "model" in data:
        return BPETokenizer(_hf_tokenizers().Tokenizer.from_str(json.dumps(data)))
    raise MemzooError(f"{path}: not a memzoo or Hugging Face tokenizer file")


def pad_batch(sequences: list[list[int]], length: int, *, side: str, fill: int = PAD_ID) -> torch.Tensor:
    """``LongTensor [N, length]`` of id lists, each cut to its first ``length`` ids and padded
    with ``fill`` on the ``"left"`` (the last real token sits at the final position, where a
    classify head reads) or the ``"right"``.

    >>> pad_batch([[5, 6], [7, 8, 9, 10]], 3, side="left").tolist()
    [[0, 5, 6], [7, 8, 9]]
    """
    if side not in ("left", "right"):
        raise ConfigError(f"side must be 'left' or 'right', got {side!r}")
    out = torch.full((len(sequences), length), fill, dtype=torch.long)
    for row, ids in enumerate(sequences):
        ids = ids[:length]
        if ids:
            if side == "left":
                out[row, length - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            else:
                out[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out
