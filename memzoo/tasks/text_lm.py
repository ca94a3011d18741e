"""``text_lm``: byte-level language modelling of real text (lm head, vocabulary 256).

Shape legend: N windows, T ``seq_len``.

The corpus (``memzoo.data.real_text``: ``pydoc``, CPython's documentation topics;
``python_source``, the standard library's modules; ``files``, the user's ``.txt``/``.md``
files) is split **by document** with a stable hash of each document's name (80 % train, 10 %
validation, 10 % test): no document is in two splits, and the validation documents select
the checkpoint without ever being trained or tested on. Text is encoded as UTF-8; one token
is one byte, so the mean cross-entropy per token in nats divided by ln 2 is the **bits per
byte** (``bpb``) of the text. A split's documents are joined in name order into one byte
stream with a NUL byte (0x00, which text does not contain) between documents, the
end-of-document token the model also predicts.

- training windows: ``seq_len + 1`` bytes at seeded uniform offsets of the training stream
  (``inputs = w[:-1]``, ``targets = w[1:]``: next-byte prediction at every position);
- validation and test windows: the stream cut into consecutive ``seq_len``-byte tiles (the
  last one padded, padding unscored), of which a seeded sample of ``num_validation`` /
  ``num_test`` is taken without replacement: no byte is scored twice, each tile read from its
  own start (no context carried across tiles).

Metrics a run stores besides the trainer's next-byte ``accuracy``: ``bpb`` on the test
windows; model-free baselines fitted on the training documents and scored on the same test
bytes (``unigram_bpb``, ``ngram_bpb``, ``ngram_order``; see
``memzoo.tasks._text_lm_ngram``); the long-context curve ``context_bpb_<C>``, the same test
spans scored with C bytes of the document before them (see ``memzoo.tasks._text_lm_eval``),
with ``context_spans``, ``context_documents`` and, where a context is not scored,
``context_bpb_reason``; a greedy continuation of a fixed test prompt (``sample_prompt``,
``sample_text``; see ``memzoo.tasks._text_lm_sample``); and the corpus sizes
(``<split>_documents``, ``<split>_bytes``).

>>> task = TextLM(seq_len=8)
>>> parts = task.splits(num_train=2, num_validation=3, num_test=3, seed=0)
>>> tuple(parts.train.inputs.shape), tuple(parts.test.targets.shape)
((2, 8), (3, 8))
>>> bytes(parts.train.inputs[0].tolist()[1:]) == bytes(parts.train.targets[0].tolist()[:-1])
True
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

import torch
from pydantic import Field, model_validator

from memzoo.data.real_text import (
    CORPORA,
    Document,
    check_corpus,
    corpus_bytes,
    load_documents,
    split_documents,
)
from memzoo.errors import ConfigError
from memzoo.tasks._real_data import check_count
from memzoo.tasks._text_lm_eval import bits_per_byte, context_curve
from memzoo.tasks._text_lm_ngram import ByteNGram, unigram_bits
from memzoo.tasks._text_lm_sample import sample_metrics
from memzoo.tasks.base import (
    IGNORE_INDEX,
    TEST_SEED_OFFSET,
    VALIDATION_SEED_OFFSET,
    DataSplits,
    Task,
    TaskData,
)
from memzoo.tasks.registry import register_task

VOCAB = 256
SEPARATOR = b"\x00"  # between the documents of a split's stream


def as_bytes(text: str) -> torch.Tensor:
    """``LongTensor [len(utf8)]``: the UTF-8 bytes of ``text``."""
    return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()


def stream_of(documents: list[Document]) -> torch.Tensor:
    """``LongTensor [L]``: the documents' UTF-8 bytes joined with a NUL byte between them."""
    joined = SEPARATOR.join(doc.text.encode("utf-8") for doc in documents)
    return torch.frombuffer(bytearray(joined), dtype=torch.uint8).long()


@lru_cache(maxsize=4)
def _fitted_ngram(train: tuple[Document, ...], order: int) -> ByteNGram:
    """The n-gram of the training documents' stream, fitted once per process and corpus."""
    return ByteNGram(stream_of(list(train)).to(torch.uint8).numpy(), order)


@register_task("text_lm")
class TextLM(Task):
    """Predict the next byte of real text; bits per byte and a long-context curve."""

    description: ClassVar[str] = (
        "byte-level language modelling of real text (pydoc, python_source or your .txt/.md "
        "files): bits per byte, n-gram baselines, bpb by context length"
    )

    corpus: str = Field("pydoc", description=f"text corpus: one of {', '.join(CORPORA)}")
    folder: str | None = Field(None, description="folder of .txt/.md files (corpus=files)")
    seq_len: int = Field(256, ge=2, description="bytes per training/evaluation window (T)")
    segment_len: int | None = Field(
        None, ge=1, description="read windows in segments of this many bytes, memory carried (SegmentRunner)"
    )
    ngram_order: int = Field(
        5, ge=1, le=8, description="order of the n-gram baseline (order-1 bytes of context)"
    )
    context_lengths: tuple[int, ...] = Field(
        (0, 64, 256, 1024, 4096), description="bytes of context C of the long-context curve"
    )
    context_span: int = Field(64, ge=1, description="bytes scored per span of the long-context curve (L)")
    context_spans: int = Field(32, ge=1, description="most spans of the long-context curve")
    spans_per_document: int = Field(8, ge=1, description="most curve spans taken from one test document")
    sample_bytes: int = Field(
        128, ge=0, description="bytes generated greedily after a test prompt and stored (0: none)"
    )
    sample_prompt_bytes: int = Field(64, ge=1, description="bytes of the sample's prompt")

    @model_validator(mode="after")
    def _check(self) -> TextLM:
        check_corpus(self.corpus, self.folder)
        if not self.context_lengths or any(c < 0 for c in self.context_lengths):
            raise ValueError(
                f"context_lengths must be one or more integers >= 0; got {list(self.context_lengths)}"
            )
        object.__setattr__(self, "context_lengths", tuple(sorted(set(self.context_lengths))))
        return self

    @property
    def input_vocab_size(self) -> int:
        return VOCAB

    def preferred_segment_len(self) -> int | None:
        return self.segment_len

    def documents(self) -> dict[str, list[Document]]:
        """The corpus split by document: ``{"train", "validation", "test"}``."""
        return split_documents(load_documents(self.corpus, self.folder))

    def _stream(self, part: str) -> torch.Tensor:
        stream = stream_of(self.documents()[part])
        if len(stream) < 2:
            raise ConfigError(
                f"corpus {self.corpus!r}: the {part} documents hold {len(stream)} byte(s); need 2"
            )
        return stream

    def training_windows(self, num_windows: int, seed: int) -> TaskData:
        """``num_windows`` windows at seeded offsets of the training stream."""
        check_count("num_train", num_windows)
        stream = self._stream("train")
        if len(stream) < self.seq_len + 1:
            raise ConfigError(
                f"seq_len={self.seq_len}: the training documents hold only {len(stream)} bytes; lower seq_len"
            )
        generator = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, len(stream) - self.seq_len, (num_windows,), generator=generator)
        rows = starts[:, None] + torch.arange(self.seq_len + 1)  # [N, T + 1]
        windows = stream[rows]
        return TaskData(windows[:, :-1].contiguous(), windows[:, 1:].contiguous())

    def tiles(self, part: str, num_windows: int, seed: int) -> TaskData:
        """A seeded sample (without replacement, in stream order) of up to ``num_windows`` of
        the consecutive ``seq_len``-byte tiles of the ``part`` stream; padding unscored."""
        check_count(f"num_{part}", num_windows)
        stream = self._stream(part)
        t = self.seq_len
        num_tiles = -(-(len(stream) - 1) // t)
        padded = torch.zeros(num_tiles * t + 1, dtype=torch.long)
        padded[: len(stream)] = stream
        targets = padded[1:].clone()
        targets[len(stream) - 1 :] = IGNORE_INDEX  # past the end of the stream
        chosen = torch.randperm(num_tiles, generator=torch.Generator().manual_seed(seed))[:num_windows]
        chosen = chosen.sort().values
        inputs = padded[:-1].view(num_tiles, t)[chosen]
        return TaskData(inputs, targets.view(num_tiles, t)[chosen])

    def splits(self, num_train: int, num_validation: int, num_test: int, seed: int) -> DataSplits:
        """Training windows of the training documents, validation tiles of the validation
        documents, test tiles of the test documents (see the module docstring)."""
        return DataSplits(
            self.training_windows(num_train, seed),
            self.tiles("validation", num_validation, seed + VALIDATION_SEED_OFFSET),
            self.tiles("test", num_test, seed + TEST_SEED_OFFSET),
        )

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """Training windows and test tiles of :meth:`splits`."""
        return self.training_windows(num_train, seed), self.tiles("test", num_test, seed + TEST_SEED_OFFSET)

    def generate(self, num_examples: int, seed: int) -> TaskData:
        """``num_examples`` training windows drawn with ``seed`` (test documents never)."""
        return self.training_windows(num_examples, seed)

    def training_set_metrics(self, train: TaskData) -> dict[str, int]:
        """Documents and UTF-8 bytes per split: ``train_documents``, ``train_bytes``, ..."""
        out = {}
        for part, docs in self.documents().items():
            out[f"{part}_documents"] = len(docs)
            out[f"{part}_bytes"] = sum(len(doc.text.encode("utf-8")) for doc in docs)
        return out

    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        """Bits per byte on the test bytes ``test`` scores, of models fitted on the training
        documents' stream: ``unigram_bpb`` (add-one byte frequencies) and ``ngram_bpb`` (an
        interpolated byte n-gram of order ``ngram_order``, stored too, that sees the same
        window the model sees)."""
        train_docs = self.documents()["train"]
        ngram = _fitted_ngram(tuple(train_docs), self.ngram_order)
        return {
            "unigram_bpb": unigram_bits(stream_of(train_docs).to(torch.uint8).numpy(), test.targets),
            "ngram_bpb": ngram.bits(test.inputs, test.targets),
            "ngram_order": self.ngram_order,
        }

    def sample_sizes(self) -> tuple[int, int]:
        """``(prompt bytes, new bytes)`` of the stored sample, clipped so that both fit in one
        training window: the prompt to half of ``seq_len``, the new bytes to the rest."""
        prompt = min(self.sample_prompt_bytes, self.seq_len // 2)
        return prompt, min(self.sample_bytes, self.seq_len - prompt)

    def model_metrics(
        self, model: torch.nn.Module, test: TaskData, segment_len: int | None = None
    ) -> dict[str, Any]:
        """``bpb`` of ``model`` on ``test`` (read in ``segment_len`` segments when set: the
        run's ``train.segment_len``, else this task's), the long-context curve on the test
        documents (``memzoo.tasks._text_lm_eval``) and a greedy sample after a test prompt
        (``sample_prompt``, ``sample_text``; ``memzoo.tasks._text_lm_sample``)."""
        documents = [as_bytes(doc.text) for doc in self.documents()["test"]]
        return {
            "bpb": bits_per_byte(model, test.inputs, test.targets, segment_len),
            **context_curve(
                model,
                documents,
                self.context_lengths,
                self.context_span,
                trained_len=self.seq_len,
                segment_len=segment_len,
                per_document=self.spans_per_document,
                max_spans=self.context_spans,
            ),
            **sample_metrics(model, documents, *self.sample_sizes()),
        }

    def own_data_bytes(self) -> tuple[int, list[str]]:
        """The corpus text held in memory: its UTF-8 bytes (from file sizes, nothing read)."""
        size = corpus_bytes(self.corpus, self.folder)
        return size, ["task.corpus"] + (["task.folder"] if self.folder is not None else [])
