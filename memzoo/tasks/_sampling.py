"""Vectorised random draws the task generators share. Every function takes a ``torch.Generator``
and draws all its randomness from it, so a task's output depends only on its seed.

Shape legend: N examples, K draws per example, M candidates.
"""

from __future__ import annotations

import torch


def sample_distinct(
    num_examples: int, k: int, low: int, high: int, generator: torch.Generator
) -> torch.Tensor:
    """``[N, K]`` integers from ``[low, high)``, distinct within each row, in random order.

    Each row is a uniformly random K-subset (Floyd's algorithm, run for all rows at once: K
    steps of O(N K) work, no ``[N, high - low]`` table), then uniformly shuffled.
    """
    pool = high - low
    if k > pool:
        raise ValueError(f"cannot draw {k} distinct values from [{low}, {high})")
    chosen = torch.full((num_examples, k), -1, dtype=torch.long)  # [N, K], -1 = not yet drawn
    for step, j in enumerate(range(pool - k, pool)):
        # Floyd: draw t in [0, j]; if t was already taken, take j (never taken before) instead.
        t = torch.randint(0, j + 1, (num_examples,), generator=generator)  # [N]
        taken = (chosen[:, :step] == t[:, None]).any(dim=1)
        chosen[:, step] = torch.where(taken, torch.full_like(t, j), t)
    # Floyd's output order is not uniform (late steps favour large values): shuffle each row.
    order = torch.rand(num_examples, k, generator=generator).argsort(dim=1)
    return chosen.gather(1, order) + low


def sample_weighted_distinct(
    log_weights: torch.Tensor, num_examples: int, k: int, generator: torch.Generator
) -> torch.Tensor:
    """``[N, K]`` distinct indices into ``log_weights [M]``, drawn without replacement.

    Same law as drawing one index at a time with probability proportional to ``exp(log_weights)``
    among those not yet drawn (the Gumbel-top-k trick: the K largest of log w + Gumbel noise).
    Taking log weights keeps steep power laws finite.
    """
    if k > log_weights.numel():
        raise ValueError(f"cannot draw {k} distinct indices from {log_weights.numel()} candidates")
    shape = (num_examples, log_weights.numel())
    uniform = torch.rand(shape, generator=generator, dtype=torch.float64)
    gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-300)))  # [N, M]
    scores = log_weights.double()[None, :] + gumbel
    return scores.topk(k, dim=1).indices


def randint_excluding(
    low: int, high: int, excluded: torch.Tensor, size: tuple[int, ...], generator: torch.Generator
) -> torch.Tensor:
    """Uniform integers from ``[low, high)`` minus one excluded value per row.

    ``excluded`` is ``[N]`` (each value inside ``[low, high)``); the result has ``size``
    ``(N, ...)``. Draws from a range one shorter and steps over the excluded value.
    """
    draws = torch.randint(low, high - 1, size, generator=generator)
    skip = excluded.view(-1, *([1] * (len(size) - 1)))
    return draws + (draws >= skip).long()
