"""``speech_digits``: connected digit strings, recognised with CTC (``ctc`` head).

Shape legend: N utterances, T ``seq_len`` frames (25 ms each by default), F ``num_features``,
K = 11 outputs (the digits 0-9 and the CTC blank, id 10).

Each utterance is a string of ``min_digits``-``max_digits`` random digits spoken in a row
("three one four one five") by an eSpeak NG voice at a random rate and pitch, with white
noise added (see :mod:`memzoo.tasks._speech` for the voices, the parts and a user's WAV
folder instead). ``inputs[n]`` holds its normalised log-mel frames **right**-padded with zero
frames; ``targets[n]`` holds the digits left-aligned and -100 after them (the ``ctc`` target
convention of :mod:`memzoo.models.ctc`). The model emits a digit or the blank at every frame;
greedy decoding merges repeats and drops blanks, and the run is scored by word error rate
(:class:`memzoo.metrics.speech.CtcAccumulator`).

Sizes by default: training ``num_train_utterances`` 1,200 from 77 voices; validation and test
``held_out_utterances`` 200 each, from 6 and 8 other voices.

The ablation a reviewer expects is the same model without memory beyond a short window:
:data:`SLIDING_WINDOW_ABLATION`. Slices: ``voice`` and ``num_digits``.

>>> import tempfile
>>> task = SpeechDigits(num_train_utterances=4, held_out_utterances=2, cache_dir=tempfile.mkdtemp())
>>> train, test = task.split(num_train=4, num_test=2, seed=0)
>>> tuple(train.inputs.shape), task.output_vocab_size, task.blank
((4, 192, 40), 11, 10)
>>> task.corpus("train").texts[0], train.targets[0, :8].tolist()
('nine two eight six zero', [9, 2, 8, 6, 0, -100, -100, -100])
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field, model_validator

from memzoo.errors import MemzooError
from memzoo.tasks._speech import SpeechTask
from memzoo.tasks.base import IGNORE_INDEX
from memzoo.tasks.registry import register_task
from memzoo.tasks.speech_words import DIGIT_WORDS

BLANK = 10
# How a folder's transcripts may write a digit.
DIGIT_TOKENS = {**{w: i for i, w in enumerate(DIGIT_WORDS)}, **{str(i): i for i in range(10)}, "oh": 0}

# The memory ablation: a sliding window of 4 frames (80 ms) per layer instead of the layer.
SLIDING_WINDOW_ABLATION = {"layers": ["sliding_window"], "layer_options": {"sliding_window": {"window": 4}}}


@register_task("speech_digits")
class SpeechDigits(SpeechTask):
    """Transcribe a spoken digit string from its log-mel frames (CTC, word error rate)."""

    description: ClassVar[str] = (
        "connected spoken digit strings (3-7 digits, eSpeak NG voices, or a WAV folder); CTC head, "
        "word error rate on held-out voices"
    )
    head: ClassVar[str] = "ctc"
    pad_side: ClassVar[str] = "right"
    blank: ClassVar[int] = BLANK

    seq_len: int = Field(192, ge=8, description="frames per example (4.8 s); utterances are right-padded")
    frame_ms: float = Field(25.0, ge=5, le=50, description="milliseconds between frames")
    min_digits: int = Field(3, ge=1, description="fewest digits in an utterance")
    max_digits: int = Field(7, ge=1, description="most digits in an utterance")
    num_train_utterances: int = Field(1200, ge=1, description="training utterances synthesised")
    held_out_utterances: int = Field(200, ge=1, description="validation and test utterances (each)")

    @model_validator(mode="after")
    def _digit_range(self):
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits must not exceed max_digits")
        if 2 * self.max_digits > self.seq_len:
            raise ValueError("seq_len must hold at least two frames per digit (2 * max_digits)")
        return self

    _count_fields: ClassVar[list[str]] = ["task.num_train_utterances", "task.held_out_utterances"]

    def _utterance_count(self, part, num_voices):
        return self.num_train_utterances if part == "train" else self.held_out_utterances

    def _texts(self, part, voices, rng):
        count = self.num_train_utterances if part == "train" else self.held_out_utterances
        items = []
        for n in range(count):
            digits = rng.integers(0, 10, int(rng.integers(self.min_digits, self.max_digits + 1)))
            items.append((" ".join(DIGIT_WORDS[d] for d in digits), voices[n % len(voices)]))
        return items

    def _check_text(self, text: str, where: str) -> None:
        unknown = [token for token in text.lower().split() if token not in DIGIT_TOKENS]
        if unknown:
            raise MemzooError(
                f"{where}: {unknown[0]!r} is not a digit; transcripts of speech_digits hold digit "
                f"words (zero..nine, oh) or numerals 0-9 separated by spaces"
            )
        if len(text.split()) * 2 > self.seq_len:
            raise MemzooError(f"{where}: more than seq_len / 2 digits; raise seq_len")

    @property
    def output_vocab_size(self) -> int:
        return 11  # ten digits and the blank

    @property
    def class_names(self) -> list[str]:
        return [*DIGIT_WORDS, "<blank>"]

    def digits(self, text: str) -> list[int]:
        """The digit ids of a transcript (``"three one"`` -> ``[3, 1]``)."""
        return [DIGIT_TOKENS[token] for token in text.lower().split()]

    def _targets(self, texts: list[str]) -> torch.Tensor:
        targets = torch.full((len(texts), self.seq_len), IGNORE_INDEX, dtype=torch.long)
        for n, text in enumerate(texts):
            labels = self.digits(text)
            targets[n, : len(labels)] = torch.tensor(labels, dtype=torch.long)
        return targets

    def _slices(self, corpus, rows):
        lengths = [len(corpus.texts[i].split()) for i in rows]
        return {**super()._slices(corpus, rows), "num_digits": torch.tensor(lengths, dtype=torch.long)}
