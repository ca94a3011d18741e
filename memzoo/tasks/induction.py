"""Induction: after ``A B ... A``, predict ``B`` (the pattern induction heads implement).

Shape legend: N examples, T ``seq_len``, V ``vocab_size``.

Layout of one example: random tokens from ``[1, V)``, with a trigger ``A`` at a random position
``p`` in ``[0, T-3]``, ``B`` right after it, and ``A`` again at the last position ``T - 1``.
``A`` occurs nowhere else and ``B != A``, so the answer is unambiguous: the only scored target
is ``targets[T-1] = B`` (next-token convention). Token 0 is never emitted (reserved).
Slice label ``distance`` = ``T - 1 - p``: how far back the first ``A`` lies.
"""

from __future__ import annotations

import torch
from pydantic import Field

from memzoo.tasks._sampling import randint_excluding
from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData
from memzoo.tasks.registry import register_task


@register_task("induction")
class Induction(Task):
    """After ``A B ... A``, predict ``B``; only the last position is scored.

    Worked example (the trigger 5 occurs at position 2 followed by 4, and again last):

    >>> data = Induction(vocab_size=10, seq_len=8).generate(num_examples=1, seed=1)
    >>> data.inputs[0].tolist()
    [6, 1, 5, 4, 4, 7, 9, 5]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, -100, -100, -100, 4]
    >>> data.slices["distance"].tolist()
    [5]
    """

    description = "after A B ... A predict B; only the final position is scored"

    vocab_size: int = Field(64, ge=3, description="tokens [1, V); 0 is reserved")
    seq_len: int = Field(256, ge=3, description="tokens per example (T)")

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, t, v = num_examples, self.seq_len, self.vocab_size
        trigger = torch.randint(1, v, (n,), generator=generator)  # [N] token A
        answer = randint_excluding(1, v, trigger, (n,), generator)  # [N] token B != A
        inputs = randint_excluding(1, v, trigger, (n, t), generator)  # [N, T] fillers, never A
        first = torch.randint(0, t - 2, (n,), generator=generator)  # [N] p in [0, T-3]
        rows = torch.arange(n)
        inputs[rows, first] = trigger
        inputs[rows, first + 1] = answer
        inputs[:, -1] = trigger
        targets = torch.full((n, t), IGNORE_INDEX, dtype=torch.long)  # [N, T]
        targets[:, -1] = answer
        return TaskData(inputs, targets, {"distance": (t - 1) - first})
