"""A FIFO ring buffer of keys/values read by top-k search: the kNN memory's store.

Shape legend: B batch, H heads, C capacity (slots), Dh head width, n queries, m incoming
entries, K top_k, T tokens.

**Contract** (all slot arithmetic lives in this file):

* Entries are numbered in the order they are written: write number ``w = 0, 1, 2, ...``.
  Write number w sits in slot ``w mod C``, overwriting write number ``w - C`` (first in,
  first out; never a reset). In the kNN layer the token at absolute position p becomes write
  number ``p - W`` when it leaves the local window of W tokens, so it occupies slot
  ``(p - W) mod C``.
* After n writes the ring holds write numbers ``max(0, n - C) .. n - 1``: slots
  ``< min(n, C)`` are valid, the others are still zeros and never returned. It never holds
  more than C entries; a write of more than C keeps only the newest C.
* ``ring_retrieve`` reads the ring *as it would stand after the first* ``sees[i]`` *of the
  incoming entries were written* (incoming row j becomes write number ``written + j``): query
  i sees write numbers ``[written + sees[i] - C, written + sees[i])``. One call thus serves
  every query of a chunk, each at its own position, with no write in between.

Reads are a softmax over the K best scores ``q . key`` (the caller folds any scale into q);
they are differentiable with respect to q, the stored and the incoming keys and values. The
``naive_*`` functions are the per-token references these are tested against.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from memzoo.ops.topk_search import topk_search


class KVRing(NamedTuple):
    keys: torch.Tensor  # [B, H, C, Dh] write number w in slot w mod C; zeros while empty
    values: torch.Tensor  # [B, H, C, Dh]
    written: int  # entries written so far, n: the ring holds write numbers max(0, n - C) .. n - 1


class RingRead(NamedTuple):
    read: torch.Tensor  # [B, H, n, Dh] softmax over each query's top-K; zeros where none found
    found: torch.Tensor  # [B, H, n, 1] bool: the query saw at least one entry


def slot_write_numbers(written: int, capacity: int, device=None) -> torch.Tensor:
    """``[C]`` write number held by each slot after ``written`` writes, -1 where still empty."""
    slot = torch.arange(capacity, device=device)
    number = written - 1 - torch.remainder(written % capacity - 1 - slot, capacity)
    return torch.where(slot < min(written, capacity), number, torch.full_like(slot, -1))


def _write(store: torch.Tensor, new: torch.Tensor, written: int) -> torch.Tensor:
    """``store`` [B, H, C, Dh] with ``new`` [B, H, m, Dh] as write numbers ``written ..``."""
    n, cap = new.shape[2], store.shape[2]
    if n == 0:
        return store
    if n > cap:  # only the newest C survive a write longer than the store
        new, written = new[:, :, n - cap :], written + n - cap
    slots = torch.remainder(written + torch.arange(new.shape[2], device=new.device), cap)
    return store.index_copy(2, slots, new)


def ring_write(ring: KVRing, keys: torch.Tensor, values: torch.Tensor) -> KVRing:
    """Append ``keys``, ``values`` ``[B, H, m, Dh]`` (write numbers ``ring.written ..``).

    Returns a new ring (the input is not modified) with ``written + m`` writes."""
    return KVRing(
        _write(ring.keys, keys, ring.written),
        _write(ring.values, values, ring.written),
        ring.written + keys.shape[2],
    )


def ring_retrieve(
    q: torch.Tensor,
    ring: KVRing,
    incoming: tuple[torch.Tensor, torch.Tensor],
    sees: torch.Tensor,
    *,
    top_k: int,
    backend: str = "torch",
) -> RingRead:
    """Top-K read of each query from the ring plus the first ``sees[i]`` incoming entries.

    Args:
        q: ``[B, H, n, Dh]`` queries (any score scale folded in).
        ring: the store before this call.
        incoming: ``(keys, values)`` ``[B, H, m, Dh]``, the entries to be written next, in order.
        sees: ``[n]`` int64, non-decreasing, ``<= m``: how many incoming entries query i sees.
        top_k: K entries read per query.
        backend: ``"torch"`` (exact) or ``"faiss"`` (see ``ops/topk_search.py``).

    The score matrix is ``[n, C + (sees[-1] - max(0, sees[0] - C))]``: the caller bounds n.
    """
    n, cap = q.shape[2], ring.keys.shape[2]
    new_k, new_v = incoming
    filled = min(ring.written, cap)  # until the ring wraps, slots >= writes are left out
    lo, hi = max(0, int(sees[0]) - cap), int(sees[-1])  # incoming rows some query sees
    cand_k = torch.cat((ring.keys[:, :, :filled], new_k[:, :, lo:hi]), dim=2)  # [B, H, S, Dh]
    cand_v = torch.cat((ring.values[:, :, :filled], new_v[:, :, lo:hi]), dim=2)
    if cand_k.shape[2] == 0:  # nothing written yet
        return RingRead(torch.zeros_like(q), q.new_zeros(*q.shape[:3], 1, dtype=torch.bool))
    own = slot_write_numbers(ring.written, cap, q.device)[:filled]
    number = torch.cat((own, ring.written + torch.arange(lo, hi, device=q.device)))  # [S]
    filled_mask = number >= 0
    newest = ring.written + sees.unsqueeze(1)  # [n, 1] first write number a query cannot see
    valid = filled_mask & (number < newest) & (number >= newest - cap)  # [n, S]
    top = topk_search(q, cand_k, top_k, valid[None, None], backend=backend)
    scores = top.score.masked_fill(~top.found, float("-inf"))
    any_found = top.found.any(dim=-1, keepdim=True)  # [B, H, n, 1]
    # Softmax over the found results only; a query that found nothing gets weight 0.
    peak = scores.detach().amax(dim=-1, keepdim=True).masked_fill(~any_found, 0.0)
    weights = torch.exp(scores - peak) * top.found
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-30)  # [B, H, n, K]
    idx = top.index.unsqueeze(-1).expand(-1, -1, -1, -1, q.shape[3])
    picked = cand_v.unsqueeze(2).expand(-1, -1, n, -1, -1).gather(3, idx)  # [B, H, n, K, Dh]
    return RingRead(torch.einsum("bhnk,bhnkd->bhnd", weights, picked), any_found)


# --- naive references: one token at a time ---------------------------------------------


def naive_ring_write(ring: KVRing, keys: torch.Tensor, values: torch.Tensor) -> KVRing:
    """Reference of ``ring_write``: each entry in turn goes to slot ``written mod C``."""
    store_k, store_v, written = ring.keys.clone(), ring.values.clone(), ring.written
    for k_t, v_t in zip(keys.unbind(2), values.unbind(2)):
        slot = written % store_k.shape[2]
        store_k[:, :, slot], store_v[:, :, slot] = k_t, v_t
        written += 1
    return KVRing(store_k, store_v, written)


def naive_ring_retrieve(q, ring: KVRing, incoming, sees, *, top_k: int) -> RingRead:
    """Reference of ``ring_retrieve``: per query, write its ``sees[i]`` incoming entries one by
    one, then softmax over the top-K scores of the ``min(written, C)`` filled slots."""
    batch, heads, n, _ = q.shape
    read = torch.zeros_like(q)
    found = torch.zeros(batch, heads, n, 1, dtype=torch.bool, device=q.device)
    for i in range(n):
        a = int(sees[i])
        seen = naive_ring_write(ring, incoming[0][:, :, :a], incoming[1][:, :, :a])
        filled = min(seen.written, seen.keys.shape[2])
        for b in range(batch):
            for h in range(heads):
                if filled == 0:
                    continue
                scores = seen.keys[b, h, :filled] @ q[b, h, i]  # [filled]
                best = scores.topk(min(top_k, filled)).indices
                read[b, h, i] = torch.softmax(scores[best], dim=0) @ seen.values[b, h, best]
                found[b, h, i] = True
    return RingRead(read, found)


def naive_knn_read(q, k, v, *, scale, gate, window: int, capacity: int, top_k: int) -> torch.Tensor:
    """Per-token reference of the kNN layer's read ``[B, H, T, Dh]`` (before the output
    projection), from unit queries/keys ``q, k`` and values ``v`` ``[B, H, T, Dh]``, a score
    scale ``[H]`` and a mixing weight ``gate`` ``[H]`` in (0, 1).

    Token t: softmax over tokens ``t-W+1 .. t`` (local), top-K softmax over tokens
    ``t-W-C+1 .. t-W`` (the store), mixed ``gate * store + (1 - gate) * local``; with an
    empty store, local only. Scores are ``scale_h * cos(q, k)``."""
    batch, heads, t_len, _ = q.shape
    w, cap = window, capacity
    out = torch.zeros_like(q)
    for b in range(batch):
        for h in range(heads):
            g, s = gate[h], scale[h]
            for t in range(t_len):
                lo = max(0, t - w + 1)
                att = torch.softmax(s * (k[b, h, lo : t + 1] @ q[b, h, t]), dim=0)
                local = att @ v[b, h, lo : t + 1]
                stored = list(range(max(0, t - w - cap + 1), max(0, t - w + 1)))
                if not stored:
                    out[b, h, t] = local
                    continue
                scores = s * (k[b, h, stored] @ q[b, h, t])
                best = scores.topk(min(top_k, len(stored))).indices
                att = torch.softmax(scores[best], dim=0)
                out[b, h, t] = g * (att @ v[b, h, [stored[i] for i in best]]) + (1 - g) * local
    return out
