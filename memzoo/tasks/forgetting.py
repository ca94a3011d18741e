"""Forgetting MQAR: keys are reassigned along the sequence; the answer is the latest value.

Shape legend: N examples, T ``seq_len``, K ``num_kv_pairs``, V ``vocab_size``,
W = T/2 - K writes.

Layout of one example (next-token convention), T/2 pairs of tokens::

    positions  0 .. 2W-1                            2W .. T-1
    inputs     write pairs  k v  (keys reassigned)   kσ1 uσ1 ... kσK uσK  (queries)
    targets    -100                                 uσ1 -100 ... uσK -100

- W writes: every one of the K keys (from ``[1, V//2)``, distinct within an example) is
  written at least once, the other W - K writes reassign uniformly chosen keys, all in a
  random order;
- a write draws its value from ``[V//2, V)``, always different from the key's current value,
  so an outdated answer is always wrong;
- then every key is queried once, in random order; its target is ``u``, the value of its
  *latest* write, which the input then shows (teacher forcing: the same value again).

Slice label ``reassigned_keys``: how many of the example's keys were written more than once.
Metric ``stale_answer_rate`` (:mod:`memzoo.tasks._forgetting_stale`): the fraction of the
queries of rewritten keys answered with an outdated value, with ``stale_answer_queries``, the
number of such queries.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from memzoo.tasks._forgetting_stale import query_predictions, stale_answers
from memzoo.tasks._sampling import randint_excluding, sample_distinct
from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData
from memzoo.tasks.registry import register_task


@register_task("forgetting_mqar")
class ForgettingMQAR(Task):
    """Associative recall with overwrites: answer with each key's latest value.

    Worked example (keys [1, 8), values [8, 16); key 4 is written 9, then 3 -> 13, then 4
    is reassigned 14; the queries ask 3 (-> 13) and 4 (-> 14, not the stale 9)):

    >>> task = ForgettingMQAR(vocab_size=16, seq_len=10, num_kv_pairs=2)
    >>> data = task.generate(num_examples=1, seed=0)
    >>> data.inputs[0].tolist()
    [4, 9, 3, 13, 4, 14, 3, 13, 4, 14]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, -100, -100, 13, -100, 14, -100]
    >>> data.slices["reassigned_keys"].tolist()
    [1]
    """

    description = "keys reassigned along the sequence; each query's answer is the latest value"

    vocab_size: int = Field(64, ge=4, description="tokens: keys [1, V/2), values [V/2, V)")
    seq_len: int = Field(64, ge=4, description="tokens per example: T/2 pairs (even)")
    num_kv_pairs: int = Field(4, ge=1, description="distinct keys per example (K)")

    @model_validator(mode="after")
    def _check_sizes(self):
        t, k, v = self.seq_len, self.num_kv_pairs, self.vocab_size
        if t % 2:
            raise ValueError(f"seq_len={t} must be even (pairs of tokens)")
        if t < 4 * k:
            raise ValueError(
                f"seq_len={t} needs to be >= 4 * num_kv_pairs = {4 * k} (each key written "
                "once and queried once)"
            )
        if v // 2 - 1 < k or v - v // 2 < 2:
            raise ValueError(
                f"vocab_size={v} gives {v // 2 - 1} keys and {v - v // 2} values; "
                f"num_kv_pairs={k} needs {k} keys and at least 2 values"
            )
        return self

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size

    def model_metrics(self, model, test: TaskData, segment_len: int | None = None) -> dict[str, float | None]:
        """``stale_answer_rate`` and ``stale_answer_queries`` of ``model`` on ``test`` (see
        :mod:`memzoo.tasks._forgetting_stale`), read in ``segment_len`` segments when set."""
        predictions = query_predictions(model, test, segment_len)  # [N, K]
        stale, eligible = stale_answers(test.inputs, self.num_kv_pairs, predictions)
        return {"stale_answer_rate": stale / eligible if eligible else None, "stale_answer_queries": eligible}

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, t, k, v = num_examples, self.seq_len, self.num_kv_pairs, self.vocab_size
        half, writes = v // 2, t // 2 - k
        keys = sample_distinct(n, k, 1, half, generator)  # [N, K]
        # Write slots name a key index: each index once, the rest uniform, shuffled.
        extra = torch.randint(0, k, (n, writes - k), generator=generator)
        slot_key = torch.cat((torch.arange(k).expand(n, k), extra), dim=1)  # [N, W]
        order = torch.rand(n, writes, generator=generator).argsort(dim=1)
        slot_key = slot_key.gather(1, order)
        current = torch.full((n, k), -1, dtype=torch.long)  # [N, K] latest value, -1 = none
        slot_value = torch.empty(n, writes, dtype=torch.long)  # [N, W]
        rows = torch.arange(n)
        for w in range(writes):  # sequential: a write must differ from the key's current value
            key = slot_key[:, w]
            old = current[rows, key]
            fresh = torch.randint(half, v, (n,), generator=generator)
            changed = randint_excluding(half, v, old.clamp_min(half), (n,), generator)
            value = torch.where(old < 0, fresh, changed)
            slot_value[:, w] = value
            current[rows, key] = value
        query = torch.rand(n, k, generator=generator).argsort(dim=1)  # [N, K] key indices
        q_keys, q_values = keys.gather(1, query), current.gather(1, query)
        w_keys = keys.gather(1, slot_key)

        def pairs(a, b):  # [N, M] x 2 -> [N, 2M] interleaved a1 b1 a2 b2 ...
            return torch.stack((a, b), dim=2).reshape(n, 2 * a.shape[1])

        inputs = torch.cat((pairs(w_keys, slot_value), pairs(q_keys, q_values)), dim=1)
        targets = torch.full_like(inputs, IGNORE_INDEX)  # [N, T]
        targets[:, 2 * writes :: 2] = q_values
        written = torch.zeros(n, k, dtype=torch.long).scatter_add_(
            1, slot_key, torch.ones_like(slot_key)
        )  # [N, K] writes per key
        return TaskData(inputs, targets, {"reassigned_keys": (written > 1).sum(dim=1)})
