"""Cross-segment recall: key-value pairs, then ``distance`` distractor tokens, then queries
(a passkey / BABILong-style probe of memory far beyond any attention window).

Shape legend: N examples, T ``seq_len``, K ``num_kv_pairs``, V ``vocab_size``,
G ``distance`` (per example when drawn from a range), U ``distractor_vocab_size``.

Layout of one example (next-token convention)::

    positions  0 .. 2K-1           2K .. 2K+G-1        2K+G .. 4K+G-1          .. T-1
    inputs     k1 v1 ... kK vK      G distractors       kσ1 0 ... kσK 0          0 ... 0
    targets    -100                 -100                vσ1 -100 ... vσK -100    -100

- keys from ``[1, V//2)``, distinct within an example; values from ``[V//2, V)``, distinct
  within an example; token 0 is never emitted except as trailing padding (below);
- the queries ask every key once, in a fresh random order; each query key is scored with its
  value, and the token after it is a blank (0), so the input never shows an answer.

**Answers shown** (``answers_shown=True``, the earlier layout): the token after each query key
is its value (teacher forcing). Since every key is queried once, a model can then answer the
last query by elimination — the one value of the pairs not yet shown — and the one before it
with a coin toss: a memory that holds the *set* of values without binding them to their keys
scores (1/K)(1/K + 1/(K-1) + ... + 1) (0.52 for K = 4) instead of chance. Measured: a
window + attention model trained on distances 64-256 stalled at exactly this (per query
0.24 / 0.34 / 0.48 / 0.99). Hidden answers make accuracy measure the binding.

**Distractors** (``distractors``):

- ``"shared"`` (default, the hard variant): uniform over ``[1, V)`` minus the example's
  keys, i.e. drawn from the key/value vocabulary itself. No key recurs before its query,
  but a distractor value-token after a distractor key-token looks exactly like a pair, so
  a memory cannot tell the K real pairs from the ~G/4 look-alike bigrams by their content:
  only the position (the first 2K tokens) marks them.
- ``"separate"``: uniform over ``distractor_vocab_size`` tokens of their own,
  ``[V, V + U)``, so the pairs are distinguishable by content — what a content-addressed
  write (RMT's memory tokens, a neural memory's surprise) needs to pick them out.

**Distances.** ``distance`` alone: every example has exactly G distractors (T = 4K + G).
With ``max_distance`` each example draws G uniformly from ``[distance, max_distance]``, and
T = 4K + ``max_distance``: an example with a shorter G is padded *after* its queries with
token 0 (never scored), so the pairs always start the sequence. Training on a range teaches a
segment-recurrent memory to keep a pair through a varying number of segment writes instead
of one fixed count; ``slices["distance"]`` labels each example with its G.

``segment_len`` is the length of the segments a model reads the example in (the trainer
uses it when ``train.segment_len`` is unset): the pairs fit in the first segment, so
between a pair and its query lie at least G tokens and ``G // segment_len`` whole segments.
``seq_len`` is derived, never set.

**Rebinding** (``rebind=R``, the overwrite probe): R of the K keys, chosen at random, are
written again with a new value halfway through the distractors (after G // 2 of them), and
the answer to every query is its key's *latest* value::

    k1 v1 ... kK vK | G//2 distractors | kρ1 u1 ... kρR uR | G - G//2 distractors | queries

The new values are distinct from the example's first ones, so a query of a rebound key
answered with its first value is unambiguous: ``stale_answer_rate`` (a model metric) is the
fraction of those queries answered with the first value (near 1: the first write stuck;
near 0: the last write wins), ``stale_answer_queries`` their number. Both writes and the query
lie at least G // 2 tokens apart: with G // 2 beyond a window, only a long-term memory can
answer, and only one that updates a binding answers right. ``seq_len`` is 4K + 2R + G.

``test_distances``: distances the trained model is also evaluated at, each at exactly that
distance (never trained on unless inside the range), the passkey protocol of training short
and testing long; the trainer records ``accuracy_by_distance = {"64": ..., "4096": ...}``.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from memzoo.tasks._forgetting_stale import query_predictions, rebind_answers
from memzoo.tasks._sampling import sample_distinct
from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData
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
    [3, 9, 4, 11, 7, 7, 3, 0, 4, 0]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, -100, -100, 9, -100, 11, -100]

    Distinguishable distractors from their own tokens [16, 20), and distances drawn from
    [2, 5]: the first example has 4 distractors and one token of padding (0) after its
    queries, the second 5 distractors and no padding.

    >>> task = CrossSegmentRecall(vocab_size=16, num_kv_pairs=2, distance=2, max_distance=5,
    ...                           segment_len=4, distractors="separate", distractor_vocab_size=4)
    >>> task.seq_len, task.input_vocab_size, task.output_vocab_size
    (13, 20, 16)
    >>> data = task.generate(num_examples=2, seed=3)
    >>> data.inputs.tolist()
    [[4, 13, 5, 10, 19, 18, 16, 16, 4, 0, 5, 0, 0], [5, 8, 3, 11, 17, 19, 18, 16, 18, 3, 0, 5, 0]]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, -100, -100, -100, -100, 13, -100, 10, -100, -100]
    >>> data.slices["distance"].tolist()
    [4, 5]
    """

    description = (
        "K key-value pairs, `distance` distractor tokens, then every key queried "
        "(recall across segments, passkey/BABILong-style)"
    )

    vocab_size: int = Field(64, ge=4, description="tokens: keys [1, V/2), values [V/2, V)")
    num_kv_pairs: int = Field(4, ge=1, description="key-value pairs written at the start (K)")
    distance: int = Field(
        256, ge=0, description="distractor tokens between pairs and queries (the minimum with max_distance)"
    )
    max_distance: int | None = Field(
        None, ge=0, description="draw each example's distance from [distance, max_distance]"
    )
    distractors: Literal["shared", "separate"] = Field(
        "shared",
        description="shared: from the key/value tokens (hard); separate: own tokens [V, V+U)",
    )
    distractor_vocab_size: int = Field(
        32, ge=1, description="U, tokens of the separate distractors (distractors=separate)"
    )
    answers_shown: bool = Field(
        False,
        description="show each answer after its query (teacher forcing; allows answering by elimination)",
    )
    segment_len: int = Field(64, ge=1, description="segment length the model reads it in")
    test_distances: tuple[int, ...] = Field(
        (), description="also evaluate the trained model at these distances (accuracy_by_distance)"
    )
    rebind: int = Field(
        0, ge=0, description="keys written again with a new value halfway to the queries (the latest answers)"
    )
    seq_len: int | None = Field(None, description="derived: 4 * num_kv_pairs + 2 * rebind + (max_)distance")

    @model_validator(mode="after")
    def _derive_seq_len(self):
        k, v, r = self.num_kv_pairs, self.vocab_size, self.rebind
        if v // 2 - 1 < k or v - v // 2 < k + r:
            raise ValueError(
                f"vocab_size={v} gives {v // 2 - 1} keys and {v - v // 2} values; "
                f"num_kv_pairs={k} with rebind={r} needs {k} keys and {k + r} values"
            )
        if r > k:
            raise ValueError(f"rebind={r} must be <= num_kv_pairs={k} (each rebound key is one of the pairs)")
        if 2 * k > self.segment_len:
            raise ValueError(
                f"num_kv_pairs={k} takes {2 * k} tokens, more than segment_len="
                f"{self.segment_len} (the pairs must fit in the first segment)"
            )
        if any(d < 0 for d in self.test_distances):
            raise ValueError(f"test_distances={list(self.test_distances)} must all be >= 0")
        if self.max_distance is not None and self.max_distance < self.distance:
            raise ValueError(
                f"max_distance={self.max_distance} must be >= distance={self.distance} "
                "(distances are drawn from [distance, max_distance])"
            )
        if "distractor_vocab_size" in self.model_fields_set and self.distractors != "separate":
            raise ValueError("distractor_vocab_size is used only with distractors=separate")
        derived = 4 * k + 2 * r + self.longest_distance
        if "seq_len" in self.model_fields_set and self.seq_len != derived:
            raise ValueError(
                f"seq_len is derived (4 * num_kv_pairs + 2 * rebind + (max_)distance = {derived}); got "
                f"seq_len={self.seq_len}: leave it unset"
            )
        object.__setattr__(self, "seq_len", derived)  # frozen model: set once, here
        return self

    @property
    def longest_distance(self) -> int:
        return self.distance if self.max_distance is None else self.max_distance

    @property
    def input_vocab_size(self) -> int:
        extra = self.distractor_vocab_size if self.distractors == "separate" else 0
        return self.vocab_size + extra

    @property
    def output_vocab_size(self) -> int:
        return self.vocab_size  # only values are scored; separate distractors never are

    def preferred_segment_len(self) -> int:
        """The task is read segment by segment: ``segment_len`` tokens at a time."""
        return self.segment_len

    def evaluation_sweep(self) -> dict[str, dict[int, CrossSegmentRecall]]:
        """The task at each of ``test_distances``, each at exactly that distance (the trainer
        records ``accuracy_by_distance``); empty when there are none."""
        if not self.test_distances:
            return {}
        params = self.model_dump(exclude={"seq_len", "test_distances", "max_distance"})
        if self.distractors == "shared":
            del params["distractor_vocab_size"]  # accepted only with separate distractors
        variants = {d: type(self)(**{**params, "distance": d}) for d in self.test_distances}
        return {"distance": variants}

    def model_metrics(self, model, test: TaskData, segment_len: int | None = None) -> dict[str, float | None]:
        """With ``rebind``: how the queries of rebound keys and of the others are answered
        (:func:`memzoo.tasks._forgetting_stale.rebind_answers`: ``stale_answer_rate``,
        ``rebound_accuracy``, ``kept_accuracy``, ``stale_answer_queries``), read in
        ``segment_len`` segments when set; nothing without."""
        if not self.rebind:
            return {}
        return rebind_answers(test, self.num_kv_pairs, query_predictions(model, test, segment_len))

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, k, v, t, r = num_examples, self.num_kv_pairs, self.vocab_size, self.seq_len, self.rebind
        g_max = self.longest_distance
        half = v // 2
        keys = sample_distinct(n, k, 1, half, generator)  # [N, K]
        values = sample_distinct(n, k + r, half, v, generator)  # [N, K + R]: first, then new values
        values, new_values = values[:, :k], values[:, k:]  # [N, K], [N, R]
        if self.distractors == "shared":
            distractors = randint_avoiding(1, v, keys, (n, g_max), generator)  # [N, Gmax]
        else:
            distractors = torch.randint(v, v + self.distractor_vocab_size, (n, g_max), generator=generator)
        order = torch.rand(n, k, generator=generator).argsort(dim=1)  # [N, K] query order
        if self.max_distance is None:
            distance = torch.full((n,), g_max, dtype=torch.long)  # [N]
        else:
            distance = torch.randint(self.distance, g_max + 1, (n,), generator=generator)  # [N]
        rebound = torch.zeros(n, 0, dtype=torch.long)  # [N, R] the rebound keys' indices
        if r:  # drawn only then: without rebind, the examples are those of the plain task
            rebound = torch.rand(n, k, generator=generator).argsort(dim=1)[:, :r]
        latest = values.scatter(1, rebound, new_values)  # [N, K] each key's last value
        q_keys, q_values = keys.gather(1, order), latest.gather(1, order)

        def pairs(a, b):  # [N, M] x 2 -> [N, 2M] interleaved a1 b1 a2 b2 ...
            return torch.stack((a, b), dim=2).reshape(n, 2 * a.shape[1])

        # Each row: pairs, G // 2 distractors, the rebinding block (2R tokens), the other
        # distractors, the queries at 2K + 2R + G, then padding.
        pos = torch.arange(t).expand(n, t)  # [N, T]
        rebind_start = (2 * k + distance // 2)[:, None]  # [N, 1]
        query_start = (2 * k + 2 * r + distance)[:, None]  # [N, 1]
        in_rebind = (pos >= rebind_start) & (pos < rebind_start + 2 * r)  # [N, T]
        in_queries = (pos >= query_start) & (pos < query_start + 2 * k)  # [N, T]
        after = torch.where(pos < rebind_start, pos - 2 * k, pos - 2 * k - 2 * r)  # distractor index
        inputs = distractors.gather(1, after.clamp(0, max(g_max - 1, 0))) if g_max else torch.zeros_like(pos)
        inputs[:, : 2 * k] = pairs(keys, values)
        inputs[in_rebind] = pairs(keys.gather(1, rebound), new_values).reshape(-1)
        inputs[pos >= query_start] = 0  # padding after the queries (and under them, overwritten)
        shown = q_values if self.answers_shown else torch.zeros_like(q_values)  # 0: a blank
        inputs[in_queries] = pairs(q_keys, shown).reshape(-1)  # row-major: each row in order
        targets = torch.full_like(inputs, IGNORE_INDEX)  # [N, T]
        scored = in_queries & ((pos - query_start) % 2 == 0)  # [N, T] the query keys
        targets[scored] = q_values.reshape(-1)
        return TaskData(inputs, targets, {"distance": distance})
