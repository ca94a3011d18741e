"""Attention score functions and an explicit masked-softmax attention, as pure tensor ops.

Shape legend: B batch, H heads, Tq queries, Tk keys, Dh head width.
Masks are boolean ``[Tq, Tk]`` (broadcast over B and H), ``True`` = "may attend".

The attention layers run dot and cosine scores through
``torch.nn.functional.scaled_dot_product_attention``; :func:`naive_attention` is the
explicit reference they are tested against, and the only path of additive scores.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Additive scores build a [B, H, Tq, Tk, Dh] intermediate; queries are processed in blocks
# so that one block holds at most this many elements (about 64 MiB in fp32).
ADDITIVE_BLOCK_ELEMENTS = 1 << 24


def dot_scores(q: torch.Tensor, k: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Scaled dot product ``q k^T * scale``; ``scale`` defaults to ``1/sqrt(Dh)``.

    q: ``[B, H, Tq, Dh]``, k: ``[B, H, Tk, Dh]`` -> ``[B, H, Tq, Tk]``.
    """
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    return torch.matmul(q, k.transpose(-1, -2)) * scale


def cosine_scores(q: torch.Tensor, k: torch.Tensor, scale: torch.Tensor | float) -> torch.Tensor:
    """Cosine similarity of q and k times a temperature ``scale`` (float or per head ``[H]``).

    q: ``[B, H, Tq, Dh]``, k: ``[B, H, Tk, Dh]`` -> ``[B, H, Tq, Tk]``, each in
    ``[-scale, scale]``.
    """
    if isinstance(scale, torch.Tensor):
        scale = scale.reshape(1, -1, 1, 1)  # [1, H, 1, 1]
    return dot_scores(F.normalize(q, dim=-1), F.normalize(k, dim=-1), 1.0) * scale


def additive_scores(q: torch.Tensor, k: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Bahdanau scores ``w_h . tanh(q_i + k_j)`` per head.

    In Bahdanau et al. (2015) the score is ``v^T tanh(W1 q + W2 k)``; here ``q`` and ``k``
    are already ``W1 q`` and ``W2 k`` (a layer's own query/key projections play that role).

    Args:
        q: ``[B, H, Tq, Dh]``; k: ``[B, H, Tk, Dh]``; w: ``[H, Dh]`` (the v of the formula).
    Returns:
        ``[B, H, Tq, Tk]``.
    """
    b, h, t_q, d = q.shape
    t_k = k.shape[2]
    block = max(1, ADDITIVE_BLOCK_ELEMENTS // max(1, b * h * t_k * d))
    w = w.reshape(1, h, 1, d, 1)  # [1, H, 1, Dh, 1]
    out = []
    for start in range(0, t_q, block):
        qb = q[:, :, start : start + block]  # [B, H, tb, Dh]
        hidden = torch.tanh(qb.unsqueeze(3) + k.unsqueeze(2))  # [B, H, tb, Tk, Dh]
        out.append(torch.matmul(hidden, w).squeeze(-1))  # [B, H, tb, Tk]
    return torch.cat(out, dim=2) if len(out) > 1 else out[0]


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the key axis (the last) with disallowed keys at weight exactly 0.

    scores: ``[B, H, Tq, Tk]``; every query must be allowed at least one key.
    """
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def naive_attention(
    scores: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Explicit attention: ``softmax(scores + mask) v``.

    Args:
        scores: ``[B, H, Tq, Tk]`` from one of the score functions above.
        v: ``[B, H, Tk, Dh]``.
        mask: ``[Tq, Tk]`` bool or None.
    Returns:
        ``(out [B, H, Tq, Dh], weights [B, H, Tq, Tk])``; each weight row sums to 1.
    """
    weights = masked_softmax(scores, mask)
    return torch.matmul(weights, v), weights
