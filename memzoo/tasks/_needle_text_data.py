"""Haystacks of real text and the planted pass key of ``needle_text`` (byte level).

Shape legend: N examples, T ``seq_len``, L ``answer_digits``, H haystack bytes
(T minus the needle, the question and the answer), K needle bytes, P needle position.

A split's **stream** is the UTF-8 bytes of its documents (sorted by name) joined by a blank
line; a haystack is a window of H consecutive bytes of one split's stream, its start uniform
over every position where it fits. A window may run from one document into the next of the
same split, and may cut a multi-byte character at its ends (the model reads bytes).

Layout of one example (bytes; next-token convention)::

    hay[:P]  NEEDLE_PREFIX d1..dL NEEDLE_SUFFIX  hay[P:]  QUESTION  d1 .. dL
    targets: -100 everywhere except at the question's last byte and d1..d(L-1) of the answer,
             which predict d1..dL (the answer's last byte is read, not scored)

so P = 0 puts the needle first (depth 0) and P = H right before the question (depth 1).
The answer's digits are uniform and independent (chance exact match 10^-L). The question
repeats the needle's words (the passkey-retrieval prompt of Mohtashami & Jaggi 2023,
"Landmark Attention", reworded), so the answer is what followed those words earlier.
"""

from __future__ import annotations

import torch

from memzoo.data.real_text import Document
from memzoo.errors import ConfigError
from memzoo.tasks.base import IGNORE_INDEX, TaskData

NEEDLE_PREFIX = b" The pass key is "
NEEDLE_SUFFIX = b". "
QUESTION = b" What is the pass key? The pass key is "
DIGIT_ZERO = ord("0")
SEPARATOR = "\n\n"  # between two documents of a stream


def overhead(answer_digits: int) -> int:
    """Bytes an example spends on the needle, the question and the answer: T - H."""
    return len(NEEDLE_PREFIX) + len(NEEDLE_SUFFIX) + len(QUESTION) + 2 * answer_digits


def stream_of(documents: list[Document]) -> torch.Tensor:
    """``uint8 [S]``: the documents' UTF-8 bytes joined by a blank line."""
    data = SEPARATOR.join(doc.text for doc in documents).encode("utf-8")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.zeros(0, dtype=torch.uint8)


def _bytes(text: bytes, n: int) -> torch.Tensor:
    """``long [N, len(text)]``: ``text`` repeated in every row."""
    return torch.tensor(list(text), dtype=torch.long).expand(n, len(text))


def needle_positions(n: int, haystack: int, depth: float | None, generator: torch.Generator) -> torch.Tensor:
    """``[N]`` needle positions P in ``[0, H]``: ``round(depth * H)`` for a fixed depth,
    uniform over the H + 1 places otherwise."""
    if depth is None:
        return torch.randint(0, haystack + 1, (n,), generator=generator)
    return torch.full((n,), round(depth * haystack), dtype=torch.long)


def build_examples(
    stream: torch.Tensor,
    num_examples: int,
    seq_len: int,
    answer_digits: int,
    depth: float | None,
    generator: torch.Generator,
    where: str = "the split",
) -> TaskData:
    """``num_examples`` needle examples whose haystacks are windows of ``stream`` (see the
    module docstring); ``where`` names the stream in the error raised when it is shorter than
    one haystack. Draws, in order: the answers, the needle positions, the window starts.

    Slice: ``depth``, the needle's depth in tenths, ``min(P * 10 // H, 9)`` (0-9): a run's
    ``slices`` then hold the per-byte accuracy by depth (``"depth=3"``)."""
    n, t, digits_len = num_examples, seq_len, answer_digits
    hay_len = t - overhead(digits_len)  # H
    if len(stream) < hay_len:
        raise ConfigError(
            f"seq_len={t} needs haystacks of {hay_len} bytes but {where} holds only {len(stream)} bytes; "
            "lower seq_len or add documents"
        )
    answer = torch.randint(0, 10, (n, digits_len), generator=generator) + DIGIT_ZERO  # [N, L]
    pos = needle_positions(n, hay_len, depth, generator)  # [N] P
    starts = torch.randint(0, len(stream) - hay_len + 1, (n,), generator=generator)  # [N]
    hay = stream.long()[starts[:, None] + torch.arange(hay_len)]  # [N, H]
    needle = torch.cat((_bytes(NEEDLE_PREFIX, n), answer, _bytes(NEEDLE_SUFFIX, n)), dim=1)  # [N, K]
    k = needle.shape[1]
    idx = torch.arange(hay_len + k).expand(n, -1)  # [N, H + K] positions of the body
    in_needle = (idx >= pos[:, None]) & (idx < pos[:, None] + k)
    from_hay = torch.where(idx < pos[:, None], idx, idx - k).clamp(0, max(hay_len - 1, 0))
    from_needle = (idx - pos[:, None]).clamp(0, k - 1)
    hay_part = hay.gather(1, from_hay) if hay_len else torch.zeros_like(idx)
    body = torch.where(in_needle, needle.gather(1, from_needle), hay_part)  # [N, H + K]
    inputs = torch.cat((body, _bytes(QUESTION, n), answer), dim=1)  # [N, T]
    targets = torch.full_like(inputs, IGNORE_INDEX)
    targets[:, t - digits_len - 1 : t - 1] = answer  # the byte before each answer byte predicts it
    return TaskData(inputs, targets, {"depth": (pos * 10 // hay_len).clamp(max=9)})
