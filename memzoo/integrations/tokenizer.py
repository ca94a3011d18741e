"""Text <-> token ids for evaluating a memzoo language model on text (lm-eval).

memzoo's language-model tasks are token ids; text needs a tokenizer. :func:`tokenizer_for`
picks, for a model folder:

1. the run's own tokenizer, if the folder holds one: ``memzoo_tokenizer.json`` (a Hugging
   Face export, :mod:`memzoo.integrations.hf_export`) or ``tokenizer.json`` (a checkpoint
   folder, written by a text task's ``save_artifacts``), read with
   :func:`memzoo.data.text_tokenizers.load_tokenizer`; its ``<bos>`` id starts a document;
2. otherwise :class:`ByteTokenizer`, the default: the UTF-8 bytes of the text are the ids
   0..255, so it needs a model with a vocabulary of at least 256 tokens (a byte-level LM).
   A document starts after a newline (id 10), the separator of the texts a byte LM is
   trained on as one stream (:func:`memzoo.integrations.lm_eval_task.generate_text_corpus`).

>>> tok = ByteTokenizer()
>>> tok.encode("hé")
[104, 195, 169]
>>> tok.decode([104, 195, 169])
'hé'
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from memzoo.data.text_tokenizers import BOS_ID, TextTokenizer, load_tokenizer
from memzoo.errors import MemzooError

TOKENIZER_FILES = ("memzoo_tokenizer.json", "tokenizer.json")  # an export's, a checkpoint's
BYTES = 256
NEWLINE = 10


class ByteTokenizer:
    """UTF-8 bytes as token ids 0..255 (any text round-trips; no unknown token).

    ``decode`` skips ids outside 0..255 and replaces an invalid UTF-8 sequence (a
    generation cut in the middle of a character) with U+FFFD."""

    kind = "bytes"
    vocab_size = BYTES
    prefix_token_id = NEWLINE  # what a document is read after (lm-eval's rolling log-likelihood)

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(i for i in ids if 0 <= i < BYTES).decode("utf-8", errors="replace")


def tokenizer_for(folder: str | Path | None, vocab_size: int) -> tuple[TextTokenizer | ByteTokenizer, int]:
    """``(tokenizer, prefix token id)`` for a model folder (or None: no folder) and a model
    with ``vocab_size`` input tokens; a ``MemzooError`` when the model cannot read it."""
    for name in TOKENIZER_FILES if folder is not None else ():
        path = Path(folder) / name
        if path.is_symlink():
            raise MemzooError(
                f"{str(path)!r} is a symbolic link; memzoo reads a tokenizer only from its own files"
            )
        if path.is_file():
            tokenizer = load_tokenizer(path)
            if tokenizer.vocab_size > vocab_size:
                raise MemzooError(
                    f"{path}: the tokenizer has {tokenizer.vocab_size} tokens, the model only {vocab_size}"
                )
            return tokenizer, BOS_ID
    if vocab_size < BYTES:
        raise MemzooError(
            f"the model reads {vocab_size} token ids and its folder holds no tokenizer "
            f"({' or '.join(TOKENIZER_FILES)}); the default byte tokenizer needs a vocabulary of "
            f"at least {BYTES} (a byte-level language model)"
        )
    return ByteTokenizer(), ByteTokenizer.prefix_token_id
