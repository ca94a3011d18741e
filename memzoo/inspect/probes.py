"""Probe sequences for looking inside a recall memory, in the layout a model was trained on.

Shape legend: N probe sequences, T ``seq_len``, K pairs written.

Every probe follows the MQAR layout (``memzoo.tasks.mqar``): K key-value pairs at positions
``0 .. 2K-1`` (key ``2i``, value ``2i+1``), then a query region of random filler tokens in
which a key is queried at an even position ``q``; the model's prediction *at* ``q`` is scored
against that key's value (next-token convention). Each probe changes one thing at a time:

- **forgetting**: the probed pair is the last one written (no pair written after it) and
  the query moves away: x = tokens since its value was written (``q - (2K - 1)``);
- **interference**: the query sits at a fixed lag from its value (``2K - 1`` tokens) and the
  probed pair moves earlier: x = pairs written after it, the rest of the gap being filler;
- **capacity**: K' pairs written and every key queried once, K' = 1, 2, 4, ... up to what
  ``seq_len`` holds (``T >= 4K'``): x = pairs stored;
- **overwrite**: a key bound to v1 early and re-bound to v2 by the last pair, queried first
  in the query region: x = pairs between the two writes; scored as latest (v2) vs stale (v1).

A layout names the token ranges of keys, values and filler, so the same probes serve any
task that shares MQAR's layout (:func:`layout_for_task`) or a layout built by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memzoo.errors import ConfigError

# Token roles, for averaging what a memory writes by the kind of token it reads.
ROLES = ("key", "value", "filler", "query")
KEY, VALUE, FILLER, QUERY = range(len(ROLES))
MAX_POINTS = 12  # points per curve: enough for a shape, few enough for one batched pass


@dataclass(frozen=True)
class RecallLayout:
    """Where keys, values and filler tokens come from (half-open ranges of token ids).

    Args:
        seq_len: tokens per probe sequence (T).
        num_pairs: pairs the model was trained with (K); forgetting and interference write
            exactly K pairs so the probes stay in the training distribution.
        keys, values, filler: ``(low, high)`` token ranges; keys and values are drawn
            distinct within a sequence, filler uniformly.
    """

    seq_len: int
    num_pairs: int
    keys: tuple[int, int]
    values: tuple[int, int]
    filler: tuple[int, int]

    def __post_init__(self) -> None:
        if self.num_pairs < 1 or self.seq_len < 4 * self.num_pairs:
            raise ConfigError(
                f"recall layout: seq_len={self.seq_len} must be >= 4 * num_pairs={self.num_pairs} (and num_pairs >= 1)"
            )
        for name in ("keys", "values", "filler"):
            low, high = getattr(self, name)
            if not 0 <= low < high:
                raise ConfigError(f"recall layout: {name}={(low, high)} must be a range low < high, low >= 0")
        if self.keys[1] - self.keys[0] < self.max_pairs or self.values[1] - self.values[0] < self.max_pairs:
            raise ConfigError(
                f"recall layout: keys {self.keys} and values {self.values} need >= {self.max_pairs} "
                "distinct tokens each (the pairs seq_len can hold)"
            )

    @property
    def max_pairs(self) -> int:
        """The most pairs a probe of ``seq_len`` holds (each pair needs its query slot)."""
        return self.seq_len // 4

    def to_dict(self) -> dict:
        return {
            "seq_len": self.seq_len,
            "num_pairs": self.num_pairs,
            "keys": list(self.keys),
            "values": list(self.values),
            "filler": list(self.filler),
        }


def layout_for_task(task) -> RecallLayout:
    """The recall layout of a task built from memzoo's registry (``mqar`` and tasks that
    share its layout); other tasks raise a ConfigError naming the ones supported."""
    if task.name not in LAYOUT_TASKS:
        raise ConfigError(
            f"inspect: task {task.name!r} has no recall layout to probe; supported tasks: "
            f"{', '.join(sorted(LAYOUT_TASKS))} (or pass a RecallLayout)"
        )
    v = task.vocab_size
    return RecallLayout(task.seq_len, task.num_kv_pairs, keys=(1, v // 2), values=(v // 2, v), filler=(1, v))


LAYOUT_TASKS = ("mqar",)


@dataclass
class ProbeBatch:
    """Probe sequences and what is scored in them.

    Attributes:
        inputs: ``[N, T]`` token ids.
        query_pos: ``[N, Q]`` positions whose prediction is scored (Q queries per sequence).
        answers: ``[N, Q]`` the value expected at each query position.
        x: ``[N]`` the curve's x value each sequence belongs to.
        roles: ``[N, T]`` the role of each token (:data:`ROLES`).
        stale: ``[N, Q]`` the overwritten value (overwrite probe only), else None.
    """

    inputs: torch.Tensor
    query_pos: torch.Tensor
    answers: torch.Tensor
    x: torch.Tensor
    roles: torch.Tensor
    stale: torch.Tensor | None = None


def _distinct(n: int, k: int, low: int, high: int, gen: torch.Generator) -> torch.Tensor:
    """``[n, k]`` tokens from ``[low, high)``, distinct within each row."""
    return torch.rand(n, high - low, generator=gen).argsort(dim=1)[:, :k] + low


def _written(layout: RecallLayout, n: int, k: int, gen: torch.Generator):
    """``n`` sequences with ``k`` pairs written at the start and filler after; returns
    ``(inputs [n, T], keys [n, k], values [n, k], roles [n, T])``."""
    keys = _distinct(n, k, *layout.keys, gen)
    values = _distinct(n, k, *layout.values, gen)
    inputs = torch.randint(*layout.filler, (n, layout.seq_len), generator=gen)
    inputs[:, 0 : 2 * k : 2], inputs[:, 1 : 2 * k : 2] = keys, values
    roles = torch.full((n, layout.seq_len), FILLER, dtype=torch.long)
    roles[:, 0 : 2 * k : 2], roles[:, 1 : 2 * k : 2] = KEY, VALUE
    return inputs, keys, values, roles


def _ask(batch_inputs, roles, keys, which, query_pos) -> None:
    """Write the key ``keys[n, which[n, j]]`` at ``query_pos[n, j]`` (in place)."""
    asked = keys.gather(1, which)
    batch_inputs.scatter_(1, query_pos, asked)
    roles.scatter_(1, query_pos, QUERY)


def spread(values: list[int], count: int = MAX_POINTS) -> list[int]:
    """At most ``count`` of the sorted distinct ``values``, evenly spaced on a log scale
    (first and last kept): a curve's x values."""
    values = sorted(set(values))
    if len(values) <= count:
        return values
    picks = torch.logspace(0, torch.log10(torch.tensor(float(len(values)))), count).round().long() - 1
    return sorted({values[int(i)] for i in picks.clamp(0, len(values) - 1)})


def forgetting_probe(layout: RecallLayout, samples: int, gen: torch.Generator) -> ProbeBatch:
    """The last of K pairs queried at growing lags (odd lags: queries sit at even positions)."""
    k = layout.num_pairs
    gaps = spread(list(range((layout.seq_len - 2 * k) // 2)))
    g = torch.tensor(gaps).repeat_interleave(samples)  # [N]
    inputs, keys, values, roles = _written(layout, len(g), k, gen)
    query_pos = (2 * k + 2 * g)[:, None]  # [N, 1]
    which = torch.full_like(query_pos, k - 1)
    _ask(inputs, roles, keys, which, query_pos)
    return ProbeBatch(inputs, query_pos, values.gather(1, which), x=2 * g + 1, roles=roles)


def interference_probe(layout: RecallLayout, samples: int, gen: torch.Generator) -> ProbeBatch:
    """Pair ``K-1-j`` queried ``2K - 1`` tokens after its value, for j pairs written after it."""
    k = layout.num_pairs
    after = torch.tensor(spread(list(range(k)))).repeat_interleave(samples)  # [N] pairs after
    inputs, keys, values, roles = _written(layout, len(after), k, gen)
    which = (k - 1 - after)[:, None]  # [N, 1] the probed pair
    query_pos = 2 * which + 2 * k  # value at 2i+1, lag 2k-1
    _ask(inputs, roles, keys, which, query_pos)
    return ProbeBatch(inputs, query_pos, values.gather(1, which), x=after, roles=roles)


def capacity_probe(
    layout: RecallLayout, samples: int, gen: torch.Generator, sizes: list[int] | None = None
) -> list[ProbeBatch]:
    """For each K' of ``sizes`` (default: powers of two up to what ``seq_len`` holds, and K
    itself): K' pairs, every key queried once at a random even slot of the query region; one
    batch per K'."""
    if sizes is None:
        powers = {2**i for i in range(layout.max_pairs.bit_length()) if 2**i <= layout.max_pairs}
        sizes = sorted(powers | {layout.num_pairs})
    batches = []
    for size in sizes:
        inputs, keys, values, roles = _written(layout, samples, size, gen)
        slots = torch.rand(samples, (layout.seq_len - 2 * size) // 2, generator=gen).argsort(dim=1)[:, :size]
        query_pos = 2 * size + 2 * slots  # [N, K']
        which = torch.arange(size).expand(samples, size)
        _ask(inputs, roles, keys, which, query_pos)
        x = torch.full((samples,), size)
        batches.append(ProbeBatch(inputs, query_pos, values, x=x, roles=roles))
    return batches


def overwrite_probe(layout: RecallLayout, samples: int, gen: torch.Generator) -> ProbeBatch:
    """Pair ``a`` re-bound by the last pair (same key, a new value), queried at ``2K``;
    x = pairs written between the two writes (``K - 2 - a``). Needs K >= 2."""
    k = layout.num_pairs
    if k < 2:
        raise ConfigError("inspect: the overwrite probe needs num_pairs >= 2 (a key written twice)")
    between = torch.tensor(spread(list(range(k - 1)))).repeat_interleave(samples)  # [N]
    inputs, keys, values, roles = _written(layout, len(between), k, gen)
    first = (k - 2 - between)[:, None]  # [N, 1] the pair whose key is re-bound
    stale = values.gather(1, first)
    inputs[:, 2 * (k - 1)] = keys.gather(1, first)[:, 0]  # the last pair re-binds that key
    query_pos = torch.full_like(first, 2 * k)
    _ask(inputs, roles, keys, first, query_pos)
    return ProbeBatch(inputs, query_pos, values[:, k - 1 : k], x=between, roles=roles, stale=stale)
