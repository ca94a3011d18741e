"""Helpers shared by tasks on a fixed data set (forecast, digits, recommend).

A fixed data set has a fixed number of training examples, while the trainer asks
``task.split(num_train, num_test, seed)`` for exactly ``num_train`` of them (an epoch is
``num_train`` examples). ``draw`` reconciles the two: it returns ``num_train`` indices into the
training pool made of whole shuffled passes over it (the last one cut short), so every
example appears ``num_train // pool`` or one more times, and ``num_train`` below the pool size
is a seeded subset.

The validation part of such a task comes out of its training data, never out of the test
part: ``hold_out`` sets aside a seeded ``VALIDATION_FRACTION`` of the training pool (at least
one example) before any training example is drawn, so no validation example is trained on.
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


VALIDATION_FRACTION = 0.1


def hold_out(pool_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(kept, validation)`` indices into ``range(pool_size)``: a seeded
    ``VALIDATION_FRACTION`` of the pool (at least 1, and at least 1 left) for validation."""
    if pool_size < 2:
        raise ConfigError(f"the task's training part holds {pool_size} example(s); at least 2 are needed")
    order = torch.randperm(pool_size, generator=torch.Generator().manual_seed(seed))
    num_validation = min(max(1, round(pool_size * VALIDATION_FRACTION)), pool_size - 1)
    return order[num_validation:].sort().values, order[:num_validation].sort().values


def check_count(name: str, value: int) -> None:
    """The argument checks ``Task.generate`` makes, for tasks that override it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")
