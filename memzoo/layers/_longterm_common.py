"""Pieces shared by the long-term memory layers: option checks, head projections, masks.

Shape legend: B batch, H heads, T time, Tq queries, Tk keys, D d_model, Dh = D / H.

Masks are boolean with ``True`` = "may attend" (the convention of
``torch.nn.functional.scaled_dot_product_attention``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    return rearrange(x, "b t (h d) -> b h t d", h=num_heads)  # [B, H, T, Dh]


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    return rearrange(x, "b h t d -> b t (h d)")  # [B, T, D]


class HeadProjection(nn.Module):
    """Query, key and value projections of ``x`` ``[B, T, D]``, each split into heads."""

    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return tuple(split_heads(t, self.num_heads) for t in (q, k, v))  # 3 x [B, H, T, Dh]


def prefix_causal_mask(t_q: int, t_prefix: int, device=None) -> torch.Tensor:
    """``[Tq, t_prefix + Tq]``: every query sees the whole prefix and its causal past.

    The keys are ``[prefix; the Tq queries' own keys]``; query i sees prefix keys and own keys
    ``<= i``.
    """
    i = torch.arange(t_q, device=device).unsqueeze(1)  # [Tq, 1]
    j = torch.arange(t_prefix + t_q, device=device).unsqueeze(0)  # [1, Tk]
    return j <= i + t_prefix


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask=None, scale=None) -> torch.Tensor:
    """Softmax attention ``[B, H, Tq, Dh]``; ``mask`` ``[Tq, Tk]`` bool or None (all visible);
    ``scale`` multiplies the scores (default ``1 / sqrt(Dh)``).

    Every query row must see at least one key (the callers always include the query itself).
    """
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


def pad_to_length(x: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad the time axis (second to last) of ``x`` ``[..., t, Dh]`` to ``length`` rows."""
    missing = length - x.shape[-2]
    if missing == 0:
        return x
    zeros = x.new_zeros(*x.shape[:-2], missing, x.shape[-1])
    return torch.cat((x, zeros), dim=-2)


def batch_counter(value: int, batch_size: int, device=None) -> torch.Tensor:
    """A per-row integer counter ``[B]`` (int64) holding ``value``, for batch-first states."""
    return torch.full((batch_size,), value, dtype=torch.long, device=device)


def read_counter(counter: torch.Tensor) -> int:
    """The Python int of a ``[B]`` counter; rows of one batch always advance together."""
    return int(counter[0].item()) if counter.numel() else 0
