"""Copying tasks: reproduce tokens seen earlier, in order, after a delimiter.

Shape legend: N examples, T ``seq_len``, L ``copy_len``, K ``num_tokens_to_copy``.

Token ids: 0 = blank, 1 = delimiter / marker, content tokens ``[2, vocab_size)``.

Both tasks are built as one stream of T + 1 tokens that ends with the reproduction;
``inputs`` is the stream without its last token and ``targets[t]`` is stream token
``t + 1`` wherever that token is a reproduced content token (next-token convention), so the
delimiter's position predicts the first content token and the last reproduction is scored
although it is never read back.

- ``copy``: ``x1 .. xL, blank * (T - 2L), SEP, x1 .. x(L-1)`` with targets ``x1 .. xL`` at the
  last L positions: pure memory over a fixed delay (the classic copy-memory task).
- ``selective_copy`` (Gu & Dao 2023): K content tokens at random positions among blanks in the
  first T - K positions, then a marker and ``c1 .. c(K-1)``; targets ``c1 .. cK`` at the last K
  positions. The content positions vary, so the model must select what to store.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from memzoo.tasks._sampling import sample_distinct
from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData, constant_slice
from memzoo.tasks.registry import register_task

BLANK = 0
DELIMITER = 1
NUM_SPECIAL = 2


def _reproduce(stream: torch.Tensor, num_scored: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a ``[N, T+1]`` stream into inputs ``[N, T]`` and targets scoring the last tokens."""
    inputs = stream[:, :-1].contiguous()
    targets = torch.full_like(inputs, IGNORE_INDEX)
    targets[:, -num_scored:] = stream[:, -num_scored:]
    return inputs, targets


class _CopyBase(Task):
    vocab_size: int = Field(
        16, ge=NUM_SPECIAL + 1, description="tokens: 0 blank, 1 delimiter, content [2, V)"
    )

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size


@register_task("copy")
class Copy(_CopyBase):
    """Copy a span of ``copy_len`` tokens after a delay of blanks and a delimiter.

    Worked example (content tokens 2-5; the span 3 5 2 is reproduced after the delimiter 1):

    >>> data = Copy(vocab_size=6, seq_len=8, copy_len=3).generate(num_examples=1, seed=1)
    >>> data.inputs[0].tolist()
    [3, 5, 2, 0, 0, 1, 3, 5]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, -100, 3, 5, 2]
    """

    description = "copy a span of tokens after a delay and a delimiter"

    seq_len: int = Field(256, ge=2, description="tokens per example (T)")
    copy_len: int = Field(32, ge=1, description="tokens to copy (L); delay is T - 2L blanks")

    @model_validator(mode="after")
    def _check_sizes(self):
        if 2 * self.copy_len > self.seq_len:
            raise ValueError(
                f"copy_len={self.copy_len} needs seq_len >= 2*copy_len = {2 * self.copy_len}, "
                f"got seq_len={self.seq_len}"
            )
        return self

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, t, length = num_examples, self.seq_len, self.copy_len
        span = torch.randint(NUM_SPECIAL, self.vocab_size, (n, length), generator=generator)
        stream = torch.full((n, t + 1), BLANK, dtype=torch.long)  # [N, T+1]
        stream[:, :length] = span
        stream[:, t - length] = DELIMITER
        stream[:, t + 1 - length :] = span
        inputs, targets = _reproduce(stream, length)
        return TaskData(inputs, targets, {"copy_len": constant_slice(n, length)})


@register_task("selective_copy")
class SelectiveCopy(_CopyBase):
    """Reproduce, in order, the content tokens scattered among blanks, after a marker.

    Slice labels: ``num_tokens_to_copy`` and ``lag`` (positions from the first content token to
    the marker: how far back the model must remember).

    Worked example (blanks 0, marker 1; content 3 5 2 at positions 1, 3, 6):

    >>> task = SelectiveCopy(vocab_size=6, seq_len=10, num_tokens_to_copy=3)
    >>> data = task.generate(num_examples=1, seed=1)
    >>> data.inputs[0].tolist()
    [0, 3, 0, 5, 0, 0, 2, 1, 3, 5]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, -100, -100, -100, 3, 5, 2]
    >>> data.slices["lag"].tolist()
    [6]
    """

    description = "reproduce the content tokens scattered among blanks, after a marker"

    seq_len: int = Field(256, ge=2, description="tokens per example (T)")
    num_tokens_to_copy: int = Field(16, ge=1, description="content tokens to reproduce (K)")

    @model_validator(mode="after")
    def _check_sizes(self):
        if 2 * self.num_tokens_to_copy > self.seq_len:
            raise ValueError(
                f"num_tokens_to_copy={self.num_tokens_to_copy} needs seq_len >= "
                f"2*num_tokens_to_copy = {2 * self.num_tokens_to_copy}, got seq_len={self.seq_len}"
            )
        return self

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, t, k = num_examples, self.seq_len, self.num_tokens_to_copy
        region = t - k  # positions [0, T-K) hold the scattered content; T-K is the marker
        content = torch.randint(NUM_SPECIAL, self.vocab_size, (n, k), generator=generator)
        positions = sample_distinct(n, k, 0, region, generator).sort(dim=1).values  # [N, K]
        stream = torch.full((n, t + 1), BLANK, dtype=torch.long)  # [N, T+1]
        stream.scatter_(1, positions, content)
        stream[:, region] = DELIMITER
        stream[:, region + 1 :] = content
        inputs, targets = _reproduce(stream, k)
        slices = {
            "num_tokens_to_copy": constant_slice(n, k),
            "lag": region - positions[:, 0],
        }
        return TaskData(inputs, targets, slices)
