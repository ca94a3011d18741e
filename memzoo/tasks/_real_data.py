"""Helpers shared by tasks on a fixed data set (forecast, digits, recommend).

A fixed data set has a fixed number of training examples, while the trainer asks
``task.split(num_train, num_test, seed)`` for exactly ``num_train`` of them (an epoch is
``num_train`` examples). ``draw`` reconciles the two: it returns ``num_train`` indices into the
training pool made of whole shuffled passes over it (the last one cut short), so every
example appears ``num_train // pool`` or one more times, and ``num_train`` below the pool size
is a seeded subset.
"""

from __future__ import annotations

import torch

from memzoo.errors import ConfigError


def draw(pool_size: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` indices into ``range(pool_size)``: concatenated random permutations, ``[count]``."""
    if pool_size <= 0:
        raise ConfigError("the task's training part holds no examples; see its parameters")
    passes = -(-count // pool_size)
    order = [torch.randperm(pool_size, generator=generator) for _ in range(passes)]
    return torch.cat(order)[:count] if order else torch.zeros(0, dtype=torch.long)


def check_count(name: str, value: int) -> None:
    """The argument checks ``Task.generate`` makes, for tasks that override it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
