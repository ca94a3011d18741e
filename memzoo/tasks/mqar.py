"""Multi-query associative recall (MQAR), the in-context recall task of Zoology (Arora et al. 2023).

Shape legend: N examples, T ``seq_len``, K ``num_kv_pairs``, V ``vocab_size``.

Layout of one example (next-token convention: ``targets[t]`` is the prediction made at ``t``)::

    positions  0 .. 2K-1            2K .. T-1
    inputs     k1 v1 k2 v2 ... kK vK  r r k2 r r r k1 r ...   (r: random filler)
    targets    -100 everywhere        -100 ... v2 ... v1 ...  (only at the queried keys)

- keys are drawn from ``[1, V//2)``, distinct within an example; values from ``[V//2, V)``,
  distinct within an example; token 0 is never emitted (reserved, e.g. for padding).
- every key is queried exactly once after the pairs, at even offsets ``2g`` of the query region
  (never two queries side by side), where the gaps ``g`` in ``[0, (T - 2K) // 2)`` are drawn
  without replacement with probability proportional to ``power_a * (g + 1) ** (power_a - 1)``:
  with the default ``power_a = 0.01`` most queries come soon after the pairs, a few far away.
- every other query-region position holds a uniformly random token from ``[1, V)``; such a
  filler can look like a key, but only the planted queries are scored.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field, model_validator

from memzoo.tasks._sampling import sample_distinct, sample_weighted_distinct
from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData, constant_slice
from memzoo.tasks.registry import register_task


@register_task("mqar")
class MQAR(Task):
    """Multi-query associative recall: K key-value pairs, then each key queried once.

    Worked example (keys in ``[1, 8)``, values in ``[8, 16)``; the pairs 3->9 and 4->11 take
    positions 0-3; key 3 is queried at position 4 and key 4 at 6, random fillers elsewhere;
    each query's target is its value, nothing else is scored):

    >>> task = MQAR(vocab_size=16, seq_len=12, num_kv_pairs=2)
    >>> data = task.generate(num_examples=1, seed=0)
    >>> data.inputs[0].tolist()
    [3, 9, 4, 11, 3, 15, 4, 15, 15, 12, 5, 15]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, 9, -100, 11, -100, -100, -100, -100, -100]
    >>> data.slices["num_kv_pairs"].tolist()
    [2]
    """

    description = "multi-query associative recall: K key-value pairs, then each key queried once"

    vocab_size: int = Field(8192, ge=4, description="tokens: keys [1, V/2), values [V/2, V)")
    seq_len: int = Field(256, ge=4, description="tokens per example (T)")
    num_kv_pairs: int = Field(16, ge=1, description="key-value pairs per example (K)")
    power_a: float = Field(0.01, gt=0, description="power law of query gaps: P(gap g) ~ a * g^(a-1)")

    @model_validator(mode="after")
    def _check_sizes(self):
        if 4 * self.num_kv_pairs > self.seq_len:
            raise ValueError(
                f"num_kv_pairs={self.num_kv_pairs} needs seq_len >= 4*num_kv_pairs = "
                f"{4 * self.num_kv_pairs}, got seq_len={self.seq_len}"
            )
        if self.vocab_size <= self.seq_len:
            raise ValueError(
                f"vocab_size={self.vocab_size} must be > seq_len={self.seq_len} "
                "(enough distinct keys and values)"
            )
        return self

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, t, k, v = num_examples, self.seq_len, self.num_kv_pairs, self.vocab_size
        half = v // 2
        keys = sample_distinct(n, k, 1, half, generator)  # [N, K]
        values = sample_distinct(n, k, half, v, generator)  # [N, K]

        # Query gaps: K distinct slots of the query region, power-law weighted towards the start.
        space = (t - 2 * k) // 2
        gaps = torch.arange(1, space + 1, dtype=torch.float64)
        log_weights = math.log(self.power_a) + (self.power_a - 1) * gaps.log()  # [space]
        slots = sample_weighted_distinct(log_weights, n, k, generator)  # [N, K]
        query_pos = 2 * k + 2 * slots  # [N, K]; key i is queried at query_pos[:, i]

        inputs = torch.randint(1, v, (n, t), generator=generator)  # [N, T] fillers
        inputs[:, 0 : 2 * k : 2] = keys
        inputs[:, 1 : 2 * k : 2] = values
        inputs.scatter_(1, query_pos, keys)
        targets = torch.full((n, t), IGNORE_INDEX, dtype=torch.long)  # [N, T]
        targets.scatter_(1, query_pos, values)
        return TaskData(inputs, targets, {"num_kv_pairs": constant_slice(n, k)})
