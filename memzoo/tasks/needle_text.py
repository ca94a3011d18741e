"""``needle_text``: a pass key hidden in a haystack of real text, asked for at the end.

Shape legend: N examples, T ``seq_len`` bytes, L ``answer_digits``.

The needle-in-a-haystack test on real text at byte level (vocabulary 256, UTF-8): the
haystack is text of a corpus of :mod:`memzoo.data.real_text` (``pydoc``, ``python_source``
or the ``.txt``/``.md`` files of a ``folder``), the needle ``" The pass key is 483. "``
sits at a chosen ``depth`` (0: the start of the context, 1: right before the question),
and the example ends with ``" What is the pass key? The pass key is 483"``: only the L
answer bytes are scored. Layout and draws: :mod:`memzoo.tasks._needle_text_data`.

**Splits.** The corpus's documents are split by a stable hash of their names
(:func:`memzoo.data.real_text.split_documents`, 80/10/10): training haystacks come from
the training documents only, validation haystacks from the validation documents (held out
of the non-test part, never trained on), test haystacks from the test documents only, so
no document appears in two splits. Each split draws its own answers and window starts
(``seed``, ``seed + VALIDATION_SEED_OFFSET``, ``seed + TEST_SEED_OFFSET``).

**Metrics** (a run's test metrics, ``memzoo.train.evaluation``):

- ``accuracy``: per-byte accuracy of the N * L answer bytes; ``example_accuracy``: exact
  match, the fraction of examples with all L bytes right (teacher forcing);
- ``accuracy_by_seq_len`` / ``state_bytes_by_seq_len`` (evaluation sweep): per-byte
  accuracy at each of ``test_lengths`` (needle depth as in training);
- :meth:`NeedleText.model_metrics`: ``exact_match_by_length_depth`` and
  ``byte_accuracy_by_length_depth``, ``{"<length>": {"<depth>": fraction}}`` over
  ``test_lengths`` x ``test_depths``, ``grid_examples`` test examples per cell (the same
  haystacks and answers at every depth of a length, and for every run: seed ``GRID_SEED``);
  drawn by :func:`memzoo.report.needle_heatmap.draw_needle_heatmap`;
- :meth:`NeedleText.baseline_metrics`: ``chance_exact_match`` (10^-L),
  ``chance_byte_accuracy`` (0.1), ``majority_byte_accuracy``.

Lengths past a long-term memory's segment are read segment by segment when ``segment_len``
is set (the trainer uses it when ``train.segment_len`` is unset; the grid always uses it).

Worked example (a 3-digit key at depth 0.5 of a 96-byte example: 32 bytes of haystack,
the needle after the first 16):

>>> task = NeedleText(seq_len=96, depth=0.5, answer_digits=3)
>>> data = task.generate(num_examples=1, seed=0)
>>> text = bytes(data.inputs[0].tolist())
>>> text[16:38], text[-21:]
(b' The pass key is 493. ', b'? The pass key is 493')
>>> [(i, chr(data.targets[0, i])) for i in range(96) if data.targets[0, i] != -100]
[(92, '4'), (93, '9'), (94, '3')]
>>> data.slices["depth"].tolist()  # in tenths
[5]
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, PrivateAttr, model_validator

from memzoo.data.real_text import CORPORA, check_corpus, load_documents, split_documents
from memzoo.tasks._needle_text_data import build_examples, overhead, stream_of
from memzoo.tasks._needle_text_grid import score_grid
from memzoo.tasks._real_data import check_count
from memzoo.tasks.base import TEST_SEED_OFFSET, VALIDATION_SEED_OFFSET, DataSplits, Task, TaskData
from memzoo.tasks.registry import register_task

BYTES = 256
GRID_SEED = 7 + TEST_SEED_OFFSET  # the grid's test examples: the same for every run
DEPTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


def _check_depth(value: float, name: str) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1] (0: the start of the context, 1: its end); got {value}")


@register_task("needle_text")
class NeedleText(Task):
    """A pass key planted at a depth of real text (bytes), asked for at the end."""

    description = (
        "needle in a real haystack: a pass key at a depth of real text (bytes), asked at the end; "
        "length x depth grid"
    )

    seq_len: int = Field(256, ge=1, description="bytes per example (T), needle and question included")
    corpus: str = Field("pydoc", description=f"haystack text: one of {', '.join(CORPORA)}")
    folder: str | None = Field(None, description="folder of .txt/.md files (corpus=files only)")
    depth: float | None = Field(None, description="needle depth in [0, 1]; None: uniform at random")
    answer_digits: int = Field(3, ge=1, le=9, description="L, digits of the pass key (all scored)")
    segment_len: int | None = Field(None, ge=1, description="segment length the model reads it in")
    test_lengths: tuple[int, ...] = Field(
        (128, 256, 512, 1024), description="seq_len of the length sweep and the length x depth grid"
    )
    test_depths: tuple[float, ...] = Field(DEPTHS, description="needle depths of the length x depth grid")
    grid_examples: int = Field(64, ge=0, description="test examples per grid cell (0: no grid)")

    _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self):
        check_corpus(self.corpus, self.folder)
        shortest = self.min_seq_len(self.answer_digits)
        if self.seq_len < shortest:
            raise ValueError(
                f"seq_len={self.seq_len} is too short for answer_digits={self.answer_digits}: the needle, "
                f"question and answer take {shortest - 1} bytes, and 1 byte of haystack: seq_len >= {shortest}"
            )
        short = [t for t in self.test_lengths if t < shortest]
        if short:
            raise ValueError(f"test_lengths {short} are shorter than {shortest} (needle, question, answer)")
        if self.depth is not None:
            _check_depth(self.depth, "depth")
        for value in self.test_depths:
            _check_depth(value, "test_depths")
        return self

    @staticmethod
    def min_seq_len(answer_digits: int) -> int:
        """The shortest ``seq_len``: the needle, question and answer, and one haystack byte."""
        return overhead(answer_digits) + 1

    @property
    def input_vocab_size(self) -> int:
        return BYTES

    def preferred_segment_len(self) -> int | None:
        """``segment_len`` when set: the example is read segment by segment."""
        return self.segment_len

    # ---- data --------------------------------------------------------------------------
    def streams(self) -> dict[str, torch.Tensor]:
        """``{"train", "validation", "test"}``: each split's byte stream (``uint8 [S]``)."""
        if not self._cache:
            parts = split_documents(load_documents(self.corpus, self.folder))
            self._cache["names"] = {k: [d.name for d in docs] for k, docs in parts.items()}
            self._cache["streams"] = {k: stream_of(docs) for k, docs in parts.items()}
        return self._cache["streams"]

    def document_names(self) -> dict[str, list[str]]:
        """The names of the documents each split's haystacks are cut from."""
        self.streams()
        return self._cache["names"]

    def _examples(self, part: str, num_examples: int, generator: torch.Generator) -> TaskData:
        where = f"the {part} documents of corpus {self.corpus!r}"
        stream = self.streams()[part]
        return build_examples(
            stream, num_examples, self.seq_len, self.answer_digits, self.depth, generator, where
        )

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        """Training examples: haystacks from the training documents."""
        return self._examples("train", num_examples, generator)

    def _part(self, part: str, num_examples: int, seed: int) -> TaskData:
        check_count("num_examples", num_examples)
        return self._examples(part, num_examples, torch.Generator().manual_seed(seed))

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """Training examples (seed ``seed``) and test examples (haystacks from the test
        documents, seed ``seed + TEST_SEED_OFFSET``)."""
        return self.generate(num_train, seed), self._part("test", num_test, seed + TEST_SEED_OFFSET)

    def splits(self, num_train: int, num_validation: int, num_test: int, seed: int) -> DataSplits:
        """As :meth:`split`, with validation examples from the validation documents (seed
        ``seed + VALIDATION_SEED_OFFSET``)."""
        train, test = self.split(num_train, num_test, seed)
        return DataSplits(
            train, self._part("validation", num_validation, seed + VALIDATION_SEED_OFFSET), test
        )

    # ---- what a run adds ---------------------------------------------------------------
    def _variant(self, seq_len: int, depth: float | None) -> NeedleText:
        params = self.model_dump(exclude={"seq_len", "depth", "test_lengths"})
        variant = type(self)(**params, seq_len=seq_len, depth=depth, test_lengths=())
        variant._cache.update(self._cache)  # the same documents: loaded once
        return variant

    def evaluation_sweep(self) -> dict[str, dict[int, NeedleText]]:
        """The task at each of ``test_lengths``, depth as in training (the trainer records
        ``accuracy_by_seq_len``, per-byte); empty if there are none."""
        if not self.test_lengths:
            return {}
        return {"seq_len": {t: self._variant(t, self.depth) for t in self.test_lengths}}

    def grid_cells(self, num_examples: int | None = None) -> dict[tuple[int, float], TaskData]:
        """Test examples of every ``(length, depth)`` of ``test_lengths`` x ``test_depths``:
        ``num_examples`` (default ``grid_examples``) drawn with seed ``GRID_SEED``."""
        count = self.grid_examples if num_examples is None else num_examples
        return {
            (t, d): self._variant(t, d)._part("test", count, GRID_SEED)
            for t in self.test_lengths
            for d in self.test_depths
        }

    def model_metrics(
        self, model: torch.nn.Module, test: TaskData, segment_len: int | None = None
    ) -> dict[str, Any]:
        """``exact_match_by_length_depth`` and ``byte_accuracy_by_length_depth`` (see the
        module docstring), read in ``segment_len`` segments when set (the run's
        ``train.segment_len``, else this task's); nothing when ``grid_examples`` is 0 or a
        grid axis is empty."""
        if not (self.grid_examples and self.test_lengths and self.test_depths):
            return {}
        return score_grid(model, self.grid_cells(), segment_len)

    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        """Model-free scores of the answer: ``chance_exact_match`` = 10^-L and
        ``chance_byte_accuracy`` = 0.1 (uniform digits, exact), and ``majority_byte_accuracy``:
        always the byte most frequent among ``train``'s scored targets, scored on ``test``'s."""
        out = {"chance_exact_match": 10.0**-self.answer_digits, "chance_byte_accuracy": 0.1}
        wanted, given = test.targets[test.targets >= 0], train.targets[train.targets >= 0]
        if len(wanted) and len(given):
            majority = int(torch.bincount(given, minlength=BYTES).argmax())
            out["majority_byte_accuracy"] = float((wanted == majority).double().mean())
        return out
