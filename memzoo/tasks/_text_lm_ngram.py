"""Model-free byte baselines of ``text_lm``: add-one unigram and an interpolated byte n-gram.

Shape legend: N training bytes, B windows, T window length, K n-gram order.

Both are fitted on a training byte stream ``uint8 [N]`` and score next-byte targets
``[B, T]`` (``-100`` unscored) given the window's inputs ``[B, T]``, in **bits per byte**:
the mean over scored positions of ``-log2 p(target)``. The n-gram sees only what the model
sees: the bytes of the same window up to the position (fewer than ``K - 1`` near the start of
a window, where it backs off to the orders it has).

- **Unigram**: ``p(x) = (count(x) + 1) / (N + 256)`` (add-one / Laplace smoothing).
- **Order-K n-gram, interpolated absolute discounting** (Ney, Essen & Kneser 1994, the
  discounting of Kneser-Ney without its continuation counts): with ``c`` the last ``j``
  bytes, ``n(c, x)`` the training count of ``c`` followed by ``x``, ``n(c)`` their sum and
  ``u(c)`` the number of distinct ``x`` seen after ``c``,
  ``p_j(x | c) = max(n(c, x) - d, 0) / n(c) + d u(c) / n(c) * p_{j-1}(x | c')``
  (``c'``: ``c`` without its oldest byte), ``p_j = p_{j-1}`` for a context never seen, and
  ``p_0`` the add-one unigram. Every ``p_j(. | c)`` sums to 1 over the 256 bytes.
  ``d = 0.75`` (the usual default).
"""

from __future__ import annotations

import math

import numpy as np
import torch

IGNORE_INDEX = -100
DISCOUNT = 0.75


def unigram_probabilities(stream: np.ndarray) -> np.ndarray:
    """Add-one smoothed byte frequencies ``float64 [256]`` of ``stream`` (``uint8 [N]``)."""
    counts = np.bincount(stream, minlength=256).astype(np.float64)
    return (counts + 1) / (counts.sum() + 256)


def unigram_bits(stream: np.ndarray, targets: torch.Tensor) -> float:
    """Bits per byte of the add-one unigram of ``stream`` on the scored ``targets`` ``[B, T]``."""
    scored = targets[targets != IGNORE_INDEX].numpy()
    if not len(scored):
        return float("nan")
    return float(-np.log2(unigram_probabilities(stream)[scored]).mean())


class _Counts:
    """Sorted keys and counts of the (context, next byte) pairs of one order, and of the
    contexts with their number of distinct followers."""

    def __init__(self, stream: np.ndarray, j: int):
        keys = _context_keys(stream[None, :], j)[0, j - 1 : len(stream) - 1]  # context ends at t
        pairs = keys * 256 + stream[j:].astype(np.int64)
        self.pair_keys, self.pair_counts = np.unique(pairs, return_counts=True)
        contexts = self.pair_keys // 256
        self.context_keys, first = np.unique(contexts, return_index=True)
        self.context_counts = np.add.reduceat(self.pair_counts, first)
        self.distinct = np.diff(np.append(first, len(contexts)))

    def lookup(self, keys: np.ndarray, table: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``values`` at ``keys`` in the sorted ``table``; 0 where a key is absent."""
        index = np.clip(np.searchsorted(table, keys), 0, max(len(table) - 1, 0))
        found = table[index] == keys if len(table) else np.zeros(keys.shape, bool)
        return np.where(found, values[index] if len(values) else 0, 0)


def _context_keys(windows: np.ndarray, j: int) -> np.ndarray:
    """``int64 [B, T]``: the last ``j`` bytes up to and including position ``t`` as one
    integer (most recent byte lowest); positions ``t < j - 1`` get -1 (no full context)."""
    windows = windows.astype(np.int64)
    keys = np.zeros(windows.shape, np.int64)
    for back in range(j):
        shifted = np.full(windows.shape, 0, np.int64)
        shifted[:, back:] = windows[:, : windows.shape[1] - back]
        keys += shifted << (8 * back)
    keys[:, : j - 1] = -1
    return keys


class ByteNGram:
    """An order-``order`` interpolated byte n-gram fitted on ``stream`` (``uint8 [N]``)."""

    def __init__(self, stream: np.ndarray, order: int = 4, discount: float = DISCOUNT):
        if not 1 <= order <= 8:
            raise ValueError(f"order must be in [1, 8], got {order}")
        self.order, self.discount = order, discount
        self.unigram = unigram_probabilities(stream)
        self.tables = [_Counts(stream, j) for j in range(1, order)]

    def probabilities(self, inputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """``p(targets[b, t] | inputs[b, :t+1])`` as ``float64 [B, T]`` (targets clipped to
        bytes; the caller masks unscored positions)."""
        targets = np.clip(targets, 0, 255).astype(np.int64)
        p = self.unigram[targets]
        for j, table in enumerate(self.tables, start=1):
            contexts = _context_keys(inputs, j)
            n_pair = table.lookup(contexts * 256 + targets, table.pair_keys, table.pair_counts)
            n_context = table.lookup(contexts, table.context_keys, table.context_counts)
            distinct = table.lookup(contexts, table.context_keys, table.distinct)
            seen = (n_context > 0) & (contexts >= 0)
            safe = np.maximum(n_context, 1)
            mixed = np.maximum(n_pair - self.discount, 0) / safe + self.discount * distinct / safe * p
            p = np.where(seen, mixed, p)
        return p

    def bits(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        """Bits per byte on the scored ``targets`` ``[B, T]`` given ``inputs`` ``[B, T]``."""
        scored = (targets != IGNORE_INDEX).numpy()
        if not scored.any():
            return float("nan")
        p = self.probabilities(inputs.numpy(), targets.numpy())
        return float(-np.log2(p[scored]).mean())


def nats_to_bits(nats: float) -> float:
    """A per-byte cross-entropy in nats as bits per byte (divide by ln 2)."""
    return nats / math.log(2)
