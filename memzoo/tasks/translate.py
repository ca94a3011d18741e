"""Translation: a built-in toy grammar between two made-up languages, or a user's sentence pairs.

Shape legend: N examples, T ``seq_len``.

``inputs[n]`` is the source sentence's token ids, right-padded with ``<pad>`` (0);
``targets[n]`` is the target sentence's ids followed by ``<eos>``, right-padded with ``-100``:
``targets[n, t]`` is what the decoder of a :class:`memzoo.models.Seq2Seq` must output at step
``t`` (its input there is ``<bos>`` then the target shifted right). Source and target have
their own vocabularies (``input_vocab_size``, ``output_vocab_size``).

- no ``path``: pairs of :class:`memzoo.tasks._toy_grammar.ToyGrammar` (SVO -> SOV word order,
  case particles, agreement), word tokens by default;
- ``path``: a tab-separated ``source<TAB>target`` file (Anki/Tatoeba exports; see
  :func:`memzoo.data.parallel_text.load_parallel_text`), split once by ``split_seed``; the tokenizers (BPE by
  default) are fitted on the training pairs. Pairs longer than ``seq_len`` tokens on either side
  (``<eos>`` counted) are left out of both parts (counted in :attr:`Translate.dropped_pairs`).

This task trains an encoder-decoder, so it has its own trainer
(``memzoo.fit`` of a translation config, ``memzoo translate``);
:meth:`Translate.translation_split` gives it the data with the reference texts.

>>> task = Translate(seq_len=10)
>>> data = task.generate(num_examples=1, seed=0)
>>> source, target = task.pairs(1, seed=0)
>>> task.source_tokenizer.decode(data.inputs[0].tolist()) == source[0]
True
>>> task.target_tokenizer.decode(data.targets[0][data.targets[0] >= 0].tolist()) == target[0]
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, PrivateAttr, field_validator, model_validator

from memzoo.data.parallel_text import load_parallel_text
from memzoo.data.text_tokenizers import EOS_ID, fit_tokenizer, pad_batch
from memzoo.errors import ConfigError, MemzooError
from memzoo.files import make_folder
from memzoo.tasks._real_data import hold_out
from memzoo.tasks._toy_grammar import ToyGrammar
from memzoo.tasks.base import IGNORE_INDEX, TEST_SEED_OFFSET, VALIDATION_SEED_OFFSET, Task, TaskData
from memzoo.tasks.registry import register_task

SOURCE_TOKENIZER_FILE = "source_tokenizer.json"
TARGET_TOKENIZER_FILE = "target_tokenizer.json"


@dataclass
class HeldOutTexts:
    """Held-out pairs as tensors and as texts (sources, and references for BLEU/chrF)."""

    data: TaskData
    sources: list[str]
    references: list[str]


@dataclass
class TranslationSplit:
    """Training pairs, validation pairs (select the checkpoint) and test pairs (scored once)."""

    train: TaskData
    validation: HeldOutTexts
    test: HeldOutTexts


@register_task("translate")
class Translate(Task):
    """Translate sentences: a toy grammar (default) or a user's TSV of sentence pairs."""

    description = "translate: toy SVO->SOV grammar, or a source<TAB>target file (path=...); memzoo translate"
    head = "seq2seq"  # an encoder-decoder: source in, target out (not a SequenceModel head)

    seq_len: int = Field(16, ge=2, description="max tokens of a sentence (target: with <eos>)")
    path: str | None = Field(None, description="source<TAB>target file; none: the toy grammar")
    source_column: int = Field(0, ge=0, description="column of the source sentence")
    target_column: int = Field(1, ge=0, description="column of the target sentence")
    tokenizer: Literal["bpe", "char", "word"] | None = Field(
        None, description="bpe, char or word; default word (grammar) / bpe (file)"
    )
    vocab_size: int = Field(2000, ge=8, description="BPE vocabulary size per language; cap for char/word")
    test_fraction: float = Field(0.1, gt=0, lt=1, description="share of a file's pairs held out")
    split_seed: int = Field(0, description="seed of a file's train/held-out split")
    grammar_seed: int = Field(0, description="lexicon of the toy grammar")

    _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("path")
    @classmethod
    def _path_is_a_file(cls, value: str | None) -> str | None:
        if value is not None and not Path(value).is_file():
            raise ValueError(f"file {value!r} does not exist")
        return value

    @model_validator(mode="after")
    def _columns_differ(self):
        if self.source_column == self.target_column:
            raise ValueError(f"source_column and target_column must differ, both are {self.source_column}")
        return self

    @property
    def tokenizer_kind(self) -> str:
        return self.tokenizer or ("word" if self.path is None else "bpe")

    # ---- data and vocabularies, prepared once ---------------------------------------------
    def _prepared(self) -> dict[str, Any]:
        if self._cache:
            return self._cache
        kind, size = self.tokenizer_kind, self.vocab_size
        if self.path is None:
            grammar = ToyGrammar(self.grammar_seed)
            # fitted on every word form (and, for BPE/char, sentences), so no seed changes them
            ref_src, ref_tgt = grammar.pairs(2000, torch.Generator().manual_seed(self.grammar_seed))
            self._cache["grammar"] = grammar
            src_texts = ref_src + [" ".join(grammar.source_words())]
            tgt_texts = ref_tgt + [" ".join(grammar.target_words())]
        else:
            pairs = load_parallel_text(self.path, self.source_column, self.target_column)
            if len(pairs) < 2:
                raise MemzooError(f"{self.path}: needs at least 2 sentence pairs to hold some out")
            order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(self.split_seed))
            num_test = min(max(1, round(len(pairs) * self.test_fraction)), len(pairs) - 1)
            test, train = order[:num_test], order[num_test:]
            kept, held = hold_out(len(train), self.split_seed + VALIDATION_SEED_OFFSET)
            parts = {"test_pairs": test, "validation_pairs": train[held], "train_pairs": train[kept]}
            for part, rows in parts.items():
                rows = rows.tolist()
                self._cache[part] = ([pairs.sources[i] for i in rows], [pairs.targets[i] for i in rows])
            src_texts, tgt_texts = self._cache["train_pairs"]
        self._cache["source_tokenizer"] = fit_tokenizer(kind, src_texts, size)
        self._cache["target_tokenizer"] = fit_tokenizer(kind, tgt_texts, size)
        if self.path is not None:  # pairs too long for seq_len never enter the pools
            for part in ("train_pairs", "validation_pairs", "test_pairs"):
                sources, targets = self._cache[part]
                kept = self._fitting(sources, targets)
                self._cache[part] = ([sources[i] for i in kept], [targets[i] for i in kept])
                self._cache["dropped_" + part] = len(sources) - len(kept)
            if not all(self._cache[part][0] for part in ("train_pairs", "validation_pairs", "test_pairs")):
                raise MemzooError(
                    f"{self.path}: no training, validation or held-out pair fits in seq_len={self.seq_len} "
                    "tokens; raise seq_len"
                )
        return self._cache

    def _fitting(self, sources: list[str], targets: list[str]) -> list[int]:
        """Indices of the pairs whose source and target (with ``<eos>``) fit in ``seq_len``."""
        src_tok, tgt_tok = self._cache["source_tokenizer"], self._cache["target_tokenizer"]

        def fits(source: str, target: str) -> bool:
            return max(len(src_tok.encode(source)), len(tgt_tok.encode(target)) + 1) <= self.seq_len

        return [i for i, (s, t) in enumerate(zip(sources, targets)) if fits(s, t)]

    @property
    def source_tokenizer(self):
        return self._prepared()["source_tokenizer"]

    @property
    def target_tokenizer(self):
        return self._prepared()["target_tokenizer"]

    @property
    def grammar(self) -> ToyGrammar | None:
        """The toy grammar (``None`` for a user's file)."""
        return self._prepared().get("grammar")

    @property
    def dropped_pairs(self) -> dict[str, int]:
        """How many training / held-out pairs of a file were left out as longer than ``seq_len``."""
        prep = self._prepared()
        return {"train": prep.get("dropped_train_pairs", 0), "test": prep.get("dropped_test_pairs", 0)}

    @property
    def input_vocab_size(self) -> int:
        return self.source_tokenizer.vocab_size

    @property
    def output_vocab_size(self) -> int:
        return self.target_tokenizer.vocab_size

    # ---- pairs and tensors -------------------------------------------------------------
    def pairs(self, num_examples: int, seed: int) -> tuple[list[str], list[str]]:
        """``num_examples`` (source, target) texts: fresh grammar sentences from ``seed``, or
        training pairs of the file in a random order (a small file is cycled)."""
        return self._draw_pairs(num_examples, torch.Generator().manual_seed(seed))

    def _draw_pairs(self, num_examples: int, generator: torch.Generator) -> tuple[list[str], list[str]]:
        prep = self._prepared()
        if self.path is None:
            return prep["grammar"].pairs(num_examples, generator)
        sources, targets = prep["train_pairs"]
        rounds = -(-num_examples // len(sources))
        order = [i for _ in range(rounds) for i in torch.randperm(len(sources), generator=generator).tolist()]
        order = order[:num_examples]
        return [sources[i] for i in order], [targets[i] for i in order]

    def encode_pairs(self, sources: list[str], targets: list[str]) -> TaskData:
        """Tensors of (source, target) texts; a pair longer than ``seq_len`` is an error."""
        src_ids = [self.source_tokenizer.encode(s) for s in sources]
        tgt_ids = [self.target_tokenizer.encode(t) + [EOS_ID] for t in targets]
        too_long = sum(len(s) > self.seq_len or len(t) > self.seq_len for s, t in zip(src_ids, tgt_ids))
        if too_long:
            raise ConfigError(
                f"seq_len={self.seq_len} is too short for {too_long} of {len(sources)} sentence "
                f"pairs with tokenizer={self.tokenizer_kind}; raise seq_len"
            )
        inputs = pad_batch(src_ids, self.seq_len, side="right")
        return TaskData(inputs, pad_batch(tgt_ids, self.seq_len, side="right", fill=IGNORE_INDEX))

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        return self.encode_pairs(*self._draw_pairs(num_examples, generator))

    def translation_split(
        self, num_train: int, num_validation: int, num_test: int, seed: int
    ) -> TranslationSplit:
        """``num_train`` training pairs drawn with ``seed``, then ``num_validation`` and
        ``num_test`` held-out pairs. Grammar: each part from its own seed. File: the first
        pairs of its validation part (a seeded ``VALIDATION_FRACTION`` of the training pairs,
        never trained on) and of its held-out part, the same for every seed."""

        def held_out(count: int, part: str, offset: int) -> HeldOutTexts:
            if self.path is None:
                sources, targets = self.pairs(count, seed + offset)
            else:
                sources, targets = (lst[:count] for lst in self._prepared()[part])
            return HeldOutTexts(self.encode_pairs(sources, targets), sources, targets)

        train = self.encode_pairs(*self.pairs(num_train, seed))
        validation = held_out(num_validation, "validation_pairs", VALIDATION_SEED_OFFSET)
        return TranslationSplit(train, validation, held_out(num_test, "test_pairs", TEST_SEED_OFFSET))

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """Not for the sequence-model trainer: translation trains a ``Seq2Seq``."""
        raise ConfigError(
            "task 'translate' trains an encoder-decoder (memzoo.models.Seq2Seq), not a "
            "SequenceModel: run `memzoo translate [key=value ...]` or "
            "memzoo.fit(config)"
        )

    def save_artifacts(self, directory: str | Path) -> list[Path]:
        """Write both tokenizers into a checkpoint directory, next to ``model.safetensors``."""
        directory = make_folder(directory, "checkpoint folder")
        return [
            self.source_tokenizer.save(directory / SOURCE_TOKENIZER_FILE),
            self.target_tokenizer.save(directory / TARGET_TOKENIZER_FILE),
        ]
