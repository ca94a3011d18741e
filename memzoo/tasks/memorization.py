"""Memorization: facts that can only live in the weights (MAD's in-weights memory probe,
Poli et al. 2024).

Shape legend: N examples, T ``seq_len``, F ``num_facts``, U ``num_values``.

A fixed key -> value map (F keys, each mapped to one of U values) is drawn once from
``map_seed``; every example, in training and in test, follows the same map. An example is
T/2 pairs ``key value`` with keys distinct within the example, so the context never shows
the answer to a scored position: ``targets`` is the value at each key position (next-token
convention) and nothing else is scored. A model can only answer from its parameters, and
only for facts the training set showed: :meth:`Memorization.facts_seen_fraction` is that
ceiling (the trainer records it as ``facts_seen_fraction``).

Token ids: 0 is never emitted; keys ``[1, 1 + F)``; values ``[1 + F, 1 + F + U)``.
"""

from __future__ import annotations

from functools import cached_property

import torch
from pydantic import Field, model_validator

from memzoo.tasks._sampling import sample_distinct
from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData, constant_slice
from memzoo.tasks.registry import register_task


@register_task("memorization")
class Memorization(Task):
    """A fixed key -> value map shared by training and test; nothing useful in context.

    Worked example (4 facts: keys 1-4, values 5-7; the map drawn from ``map_seed=1`` sends
    key 3 to 5 and key 4 to 7; each key position is scored with its value):

    >>> task = Memorization(num_facts=4, num_values=3, seq_len=4, map_seed=1)
    >>> task.fact_values.tolist()  # values of keys 1, 2, 3, 4
    [6, 7, 5, 7]
    >>> data = task.generate(num_examples=1, seed=0)
    >>> data.inputs[0].tolist()
    [3, 5, 4, 7]
    >>> data.targets[0].tolist()
    [5, -100, 7, -100]
    >>> task.facts_seen_fraction(data)  # keys 3 and 4 of 4 were shown
    0.5
    """

    description = "in-weights memory: a fixed key->value map shared by train and test (MAD)"

    num_facts: int = Field(256, ge=1, description="keys in the fixed map (F)")
    num_values: int = Field(16, ge=2, description="distinct values (U)")
    map_seed: int = Field(0, description="seed of the key->value map (the same for every split)")
    seq_len: int = Field(32, ge=2, description="tokens per example: T/2 key-value pairs")

    def own_data_bytes(self) -> tuple[int, list[str]]:
        """The key -> value map: two int64 tensors of ``num_facts``."""
        return 16 * self.num_facts, ["task.num_facts"]

    @model_validator(mode="after")
    def _check_sizes(self):
        if self.seq_len % 2:
            raise ValueError(f"seq_len={self.seq_len} must be even (key-value pairs)")
        if self.seq_len // 2 > self.num_facts:
            raise ValueError(
                f"seq_len={self.seq_len} holds {self.seq_len // 2} distinct keys per example "
                f"but num_facts={self.num_facts}"
            )
        return self

    @property
    def input_vocab_size(self) -> int:
        return 1 + self.num_facts + self.num_values

    @cached_property
    def fact_values(self) -> torch.Tensor:
        """``[F]`` the value token of keys ``1 .. F``, drawn from ``map_seed`` only."""
        generator = torch.Generator().manual_seed(self.map_seed)
        values = torch.randint(0, self.num_values, (self.num_facts,), generator=generator)
        return values + 1 + self.num_facts

    def facts_seen_fraction(self, data: TaskData) -> float:
        """Fraction of the F facts whose key is scored somewhere in ``data``: the best
        accuracy a model trained on ``data`` can reach on facts drawn uniformly."""
        keys = data.inputs[data.targets != IGNORE_INDEX]
        keys = keys[(keys >= 1) & (keys <= self.num_facts)]
        return keys.unique().numel() / self.num_facts

    def training_set_metrics(self, data: TaskData) -> dict[str, float]:
        """What the trainer records from the training set: ``facts_seen_fraction``."""
        return {"facts_seen_fraction": self.facts_seen_fraction(data)}

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, pairs = num_examples, self.seq_len // 2
        keys = sample_distinct(n, pairs, 1, 1 + self.num_facts, generator)  # [N, T/2] distinct
        values = self.fact_values[keys - 1]  # [N, T/2]
        inputs = torch.stack((keys, values), dim=2).reshape(n, self.seq_len)  # k v k v ...
        targets = torch.full((n, self.seq_len), IGNORE_INDEX, dtype=torch.long)
        targets[:, 0::2] = values
        return TaskData(inputs, targets, {"num_facts": constant_slice(n, self.num_facts)})
