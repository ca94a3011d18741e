"""A trained translation model back from its checkpoint directory, ready to translate text.

The directory holds ``model.safetensors``, ``config.json`` (the ``TranslationConfig`` and
vocabulary sizes) and the two tokenizers ``source_tokenizer.json`` / ``target_tokenizer.json``
that a translation run (``memzoo.fit`` of a translate config) writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from memzoo.data.text_tokenizers import load_tokenizer, pad_batch
from memzoo.errors import MemzooError
from memzoo.models.seq2seq import Seq2Seq
from memzoo.tasks.translate import SOURCE_TOKENIZER_FILE, TARGET_TOKENIZER_FILE
from memzoo.train.checkpoint import code_consent, read_checkpoint
from memzoo.train.seq2seq_config import Seq2SeqModelConfig, build_seq2seq


@dataclass
class Translator:
    """A ``Seq2Seq`` with its tokenizers: ``translate(texts) -> texts``."""

    model: Seq2Seq
    source_tokenizer: object
    target_tokenizer: object
    seq_len: int

    def translate(self, texts: list[str], *, beam_size: int = 1, length_penalty: float = 1.0) -> list[str]:
        """Translations of ``texts`` (sources longer than ``seq_len`` tokens are cut)."""
        src = pad_batch([self.source_tokenizer.encode(t) for t in texts], self.seq_len, side="right")
        ids = self.model.translate_ids(
            src, beam_size=beam_size, length_penalty=length_penalty, max_len=self.seq_len
        )
        return [self.target_tokenizer.decode(row) for row in ids]


def load_translator(
    directory: str | Path, device: str | torch.device = "cpu", *, trust_code: bool = False
) -> Translator:
    """Rebuild the model saved in ``directory``, load its weights and tokenizers (eval mode).

    A layer the checkpoint names by import path is imported only with ``trust_code=True``
    (see ``memzoo.train.checkpoint.code_consent``)."""
    directory = Path(directory)
    weights, meta = read_checkpoint(directory)
    if meta.get("kind") != "seq2seq":
        raise MemzooError(f"{directory}: not a translation checkpoint (use memzoo.load for sequence models)")
    with code_consent(directory, trust_code):
        m = Seq2SeqModelConfig.model_validate(meta["config"]["model"])  # not the task: its file may be gone
        model = build_seq2seq(m, meta["src_vocab_size"], meta["tgt_vocab_size"])
    model.load_state_dict(weights)
    model.checkpoint_meta = meta
    return Translator(
        model.to(device).eval(),
        load_tokenizer(directory / SOURCE_TOKENIZER_FILE),
        load_tokenizer(directory / TARGET_TOKENIZER_FILE),
        meta["seq_len"],
    )
