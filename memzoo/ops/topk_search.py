"""Top-k inner-product search of queries over a key store: exact torch, naive, FAISS.

Shape legend: B batch, H heads, N queries, S stored keys, K = k results, Dh head width.

All three searches take the same arguments and return the same thing::

    q      [B, H, N, Dh]  queries
    keys   [B, H, S, Dh]  the store
    k      int            results per query
    valid  bool, broadcastable to [B, H, N, S], or None: True = key j may be returned for
           query i (masks empty slots, evicted entries, keys newer than the query)
    -> TopK(score [B, H, N, K], index [B, H, N, K] int64, found [B, H, N, K] bool)

Results are sorted by descending score ``q . key`` (unscaled). Where fewer than K keys are
valid, the missing results have ``found`` False, score ``-inf`` and index 0. Scores are
differentiable with respect to ``q`` and ``keys``; indices are not.

``exact_topk`` is the default path, ``naive_topk`` the loop reference it is tested against,
``faiss_topk`` the optional FAISS path (``pip install faiss-cpu``): FAISS only proposes the
indices (an exact flat inner-product index, over-fetching enough to survive the mask), and
the scores are recomputed in torch so that they stay differentiable and sorted the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from memzoo.errors import ConfigError

NEG_INF = float("-inf")


class TopK(NamedTuple):
    score: torch.Tensor  # [B, H, N, K] q . key, descending; -inf where not found
    index: torch.Tensor  # [B, H, N, K] int64 position in the store; 0 where not found
    found: torch.Tensor  # [B, H, N, K] bool


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _require_faiss():
    try:
        import faiss
    except ImportError:
        raise ConfigError(
            "backend='faiss' needs the optional dependency faiss-cpu: "
            "pip install 'memzoo[faiss]' (or pip install faiss-cpu), or use backend='torch'"
        ) from None
    return faiss


def _pad(top: TopK, k: int) -> TopK:
    """Widen results to exactly k columns (when the store holds fewer than k keys)."""
    missing = k - top.score.shape[-1]
    if missing <= 0:
        return top
    shape = (*top.score.shape[:-1], missing)
    return TopK(
        torch.cat((top.score, top.score.new_full(shape, NEG_INF)), dim=-1),
        torch.cat((top.index, top.index.new_zeros(shape)), dim=-1),
        torch.cat((top.found, top.found.new_zeros(shape)), dim=-1),
    )


def _finish(score: torch.Tensor, index: torch.Tensor, k: int) -> TopK:
    found = score > NEG_INF
    return _pad(TopK(score, torch.where(found, index, torch.zeros_like(index)), found), k)


def exact_topk(q: torch.Tensor, keys: torch.Tensor, k: int, valid=None) -> TopK:
    """Exact top-k by a full score matrix ``[B, H, N, S]`` and ``torch.topk``."""
    scores = torch.einsum("bhnd,bhsd->bhns", q, keys)  # [B, H, N, S]
    if valid is not None:
        scores.masked_fill_(~valid, NEG_INF)  # in place: bmm's backward does not need its output
    score, index = scores.topk(min(k, keys.shape[2]), dim=-1)  # sorted, descending
    return _finish(score, index, k)


def naive_topk(q: torch.Tensor, keys: torch.Tensor, k: int, valid=None) -> TopK:
    """Reference: per query, score every valid key one by one and sort the list."""
    batch, heads, n_q, _ = q.shape
    n_keys = keys.shape[2]
    if valid is None:
        valid = torch.ones(1, 1, 1, 1, dtype=torch.bool)
    valid = valid.expand(batch, heads, n_q, n_keys)
    rows_s, rows_i = [], []
    for b in range(batch):
        for h in range(heads):
            for i in range(n_q):
                cands = [(j, (q[b, h, i] * keys[b, h, j]).sum()) for j in range(n_keys) if valid[b, h, i, j]]
                cands.sort(key=lambda c: -c[1].item())
                cands = cands[:k]
                pad = k - len(cands)
                missing = [q.new_tensor(NEG_INF)] * pad
                rows_s.append(torch.stack([s for _, s in cands] + missing))
                rows_i.append(torch.tensor([j for j, _ in cands] + [0] * pad, dtype=torch.long))
    score = torch.stack(rows_s).reshape(batch, heads, n_q, k)
    index = torch.stack(rows_i).reshape(batch, heads, n_q, k)
    return TopK(score, index, score > NEG_INF)


def faiss_topk(q: torch.Tensor, keys: torch.Tensor, k: int, valid=None) -> TopK:
    """FAISS proposes candidates per (batch row, head); torch re-scores and re-sorts them.

    For each (b, h) a flat inner-product index holds the keys that some query may see. A
    query for which m of those keys are masked asks for ``k + m`` neighbours, so at least k
    valid ones survive the mask whenever k exist: the result equals the exact search (up to
    the order of exactly tied scores).
    """
    faiss = _require_faiss()
    batch, heads, n_q, dim = q.shape
    n_keys = keys.shape[2]
    if valid is None:
        valid = torch.ones(1, 1, 1, 1, dtype=torch.bool, device=q.device)
    valid = valid.expand(batch, heads, n_q, n_keys)
    q_np = q.detach().float().cpu().contiguous().numpy()
    keys_np = keys.detach().float().cpu().contiguous().numpy()
    valid_cpu = valid.cpu()
    width = max(1, min(k, n_keys))
    index = torch.zeros(batch, heads, n_q, width, dtype=torch.long)
    found = torch.zeros(batch, heads, n_q, width, dtype=torch.bool)
    for b in range(batch):
        for h in range(heads):
            ids = valid_cpu[b, h].any(dim=0).nonzero().squeeze(1)  # [C] candidate keys
            if ids.numel() == 0:
                continue
            flat = faiss.IndexFlatIP(dim)
            flat.add(keys_np[b, h][ids.numpy()])
            ok_cand = valid_cpu[b, h][:, ids]  # [N, C]
            masked = int((ids.numel() - ok_cand.sum(dim=1)).max())
            fetch = min(ids.numel(), k + masked)
            _, near = flat.search(q_np[b, h], fetch)  # [N, fetch] positions into ids
            near = torch.from_numpy(near).long()
            ok = ok_cand.gather(1, near)  # [N, fetch]
            # Keep the first `width` valid proposals of each row (FAISS order is by score).
            rank = torch.where(ok, ok.long().cumsum(dim=1) - 1, torch.full_like(near, width))
            keep = rank < width
            rows = torch.arange(n_q).unsqueeze(1).expand_as(near)
            index[b, h][rows[keep], rank[keep]] = ids[near[keep]]
            found[b, h][rows[keep], rank[keep]] = True
    index, found = index.to(q.device), found.to(q.device)
    picked = keys.gather(2, index.flatten(2).unsqueeze(-1).expand(-1, -1, -1, dim))
    picked = picked.view(batch, heads, n_q, width, dim)  # [B, H, N, width, Dh]
    score = torch.einsum("bhnd,bhnkd->bhnk", q, picked).masked_fill(~found, NEG_INF)
    score, order = score.sort(dim=-1, descending=True)  # FAISS and torch may round apart
    return _finish(score, index.gather(-1, order), k)


def topk_search(q: torch.Tensor, keys: torch.Tensor, k: int, valid=None, backend="torch") -> TopK:
    """Dispatch to ``exact_topk`` (``backend="torch"``) or ``faiss_topk`` (``"faiss"``)."""
    if backend == "torch":
        return exact_topk(q, keys, k, valid)
    if backend == "faiss":
        return faiss_topk(q, keys, k, valid)
    raise ConfigError(f"top-k search: backend must be one of ['torch', 'faiss'], got {backend!r}")
