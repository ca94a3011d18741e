"""Cross-segment recall: key-value pairs, then ``distance`` distractor tokens, then queries
(a passkey / BABILong-style probe of memory far beyond any attention window).

Shape legend: N examples, T ``seq_len``, K ``num_kv_pairs``, V ``vocab_size``,
G ``distance``.

Layout of one example (next-token convention)::

    positions  0 .. 2K-1           2K .. 2K+G-1        2K+G .. T-1   (T = 4K + G)
    inputs     k1 v1 ... kK vK      G distractors       kσ1 vσ1 ... kσK vσK
    targets    -100                 -100                vσ1 -100 ... vσK -100

- keys from ``[1, V//2)``, distinct within an example; values from ``[V//2, V)``, distinct
  within an example; token 0 is never emitted;
- the distractors are uniform over ``[1, V)`` minus the example's keys, so no key recurs
  before its query and every query has exactly one answer;
- the queries ask every key once, in a fresh random order; each query key is scored with its
  value, which the input then shows (teacher forcing) — it answers no other query.

``segment_len`` is the length of the segments a model reads the example in (the trainer
uses it when ``train.segment_len`` is unset): the pairs fit in the first segment, so
between a pair and its query lie at least ``distance`` tokens and
``distance // segment_len`` whole segments. ``seq_len`` is derived, never set.

``test_distances``: distances the trained model is also evaluated at (never trained on), the
passkey protocol of training short and testing long; the trainer records
``accuracy_by_distance = {"64": ..., "4096": ...}``.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from memzoo.tasks._sampling import sample_distinct
from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData, constant_slice
from memzoo.tasks.registry import register_task


def randint_avoiding(low: int, high: int, avoid: torch.Tensor, size, generator) -> torch.Tensor:
    """Uniform integers from ``[low, high)`` minus each row's values in ``avoid`` ``[N, A]``
    (distinct, inside the range); ``size`` is ``(N, M)``. Draws from a range A shorter and
    steps over the avoided values in ascending order."""
    draws = torch.randint(low, high - avoid.shape[1], size, generator=generator)  # [N, M]
    for column in avoid.sort(dim=1).values.unbind(dim=1):  # ascending: each step is final
        draws = draws + (draws >= column[:, None]).long()
    return draws


@register_task("cross_segment_recall")
class CrossSegmentRecall(Task):
    """Recall K pairs written at the start after ``distance`` distractor tokens.

    Worked example (keys [1, 8), values [8, 16); the pairs 3->9 and 4->11, two
    distractors, then keys 3 and 4 are queried, each scored with its value):

    >>> task = CrossSegmentRecall(vocab_size=16, num_kv_pairs=2, distance=2, segment_len=4)
    >>> task.seq_len
    10
    >>> data = task.generate(num_examples=1, seed=0)
    >>> data.inputs[0].tolist()
    [3, 9, 4, 11, 7, 7, 3, 9, 4, 11]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, -100, -100, 9, -100, 11, -100]
    """

    description = (
        "K key-value pairs, `distance` distractor tokens, then every key queried "
        "(recall across segments, passkey/BABILong-style)"
    )

    vocab_size: int = Field(64, ge=4, description="tokens: keys [1, V/2), values [V/2, V)")
    num_kv_pairs: int = Field(4, ge=1, description="key-value pairs written at the start (K)")
    distance: int = Field(256, ge=0, description="distractor tokens between pairs and queries")
    segment_len: int = Field(64, ge=1, description="segment length the model reads it in")
    test_distances: tuple[int, ...] = Field(
        (), description="also evaluate the trained model at these distances (accuracy_by_distance)"
    )
    seq_len: int | None = Field(None, description="derived: 4 * num_kv_pairs + distance")

    @model_validator(mode="after")
    def _derive_seq_len(self):
        k, v = self.num_kv_pairs, self.vocab_size
        if v // 2 - 1 < k or v - v // 2 < k:
            raise ValueError(
                f"vocab_size={v} gives {v // 2 - 1} keys and {v - v // 2} values; "
                f"num_kv_pairs={k} needs {k} of each"
            )
        if 2 * k > self.segment_len:
            raise ValueError(
                f"num_kv_pairs={k} takes {2 * k} tokens, more than segment_len="
                f"{self.segment_len} (the pairs must fit in the first segment)"
            )
        if any(d < 0 for d in self.test_distances):
            raise ValueError(f"test_distances={list(self.test_distances)} must all be >= 0")
        derived = 4 * k + self.distance
        if "seq_len" in self.model_fields_set and self.seq_len != derived:
            raise ValueError(
                f"seq_len is derived (4 * num_kv_pairs + distance = {derived}); got "
                f"seq_len={self.seq_len}: leave it unset"
            )
        object.__setattr__(self, "seq_len", derived)  # frozen model: set once, here
        return self

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size

    def preferred_segment_len(self) -> int:
        """The task is read segment by segment: ``segment_len`` tokens at a time."""
        return self.segment_len

    def evaluation_sweep(self) -> dict[str, dict[int, CrossSegmentRecall]]:
        """The task at each of ``test_distances`` (the trainer records
        ``accuracy_by_distance``); empty when there are none."""
        if not self.test_distances:
            return {}
        params = self.model_dump(exclude={"seq_len", "test_distances"})
        variants = {d: type(self)(**{**params, "distance": d}) for d in self.test_distances}
        return {"distance": variants}

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, k, v, g = num_examples, self.num_kv_pairs, self.vocab_size, self.distance
        half = v // 2
        keys = sample_distinct(n, k, 1, half, generator)  # [N, K]
        values = sample_distinct(n, k, half, v, generator)  # [N, K]
        distractors = randint_avoiding(1, v, keys, (n, g), generator)  # [N, G]
        order = torch.rand(n, k, generator=generator).argsort(dim=1)  # [N, K] query order
        q_keys, q_values = keys.gather(1, order), values.gather(1, order)

        def pairs(a, b):  # [N, K] x 2 -> [N, 2K] interleaved a1 b1 a2 b2 ...
            return torch.stack((a, b), dim=2).reshape(n, 2 * k)

        inputs = torch.cat((pairs(keys, values), distractors, pairs(q_keys, q_values)), dim=1)
        targets = torch.full_like(inputs, IGNORE_INDEX)  # [N, T]
        targets[:, 2 * k + g :: 2] = q_values
        return TaskData(inputs, targets, {"distance": constant_slice(n, g)})
