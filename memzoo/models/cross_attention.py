"""Cross-attention: decoder queries read the encoder's outputs (the memory of the source).

Shape legend: B batch, H heads, T decoder positions, S source positions, D d_model,
Dh = D / H.

Scores (``score``):

- ``"dot"``: scaled dot product ``q.k / sqrt(Dh)`` (Luong-style, multi-head);
- ``"additive"``: Bahdanau et al. (2015) ``v^T tanh(W1 q + W2 k)`` per head, where W1 and W2
  are the query and key projections and ``v`` a learned vector per head.

Source padding is masked: a query never puts weight on a padded source position. The keys
and values of the memory are projected once per source (:meth:`CrossAttention.project_memory`)
and reused at every decoding step.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from einops import rearrange
from torch import nn

from memzoo.errors import ConfigError
from memzoo.layers._checks import check_heads
from memzoo.ops.attention_scores import additive_scores, dot_scores, naive_attention

CROSS_SCORES = ("dot", "additive")


class MemoryKV(NamedTuple):
    k: torch.Tensor  # [B, H, S, Dh] projected keys of the encoder outputs
    v: torch.Tensor  # [B, H, S, Dh] projected values
    mask: torch.Tensor  # [B, 1, 1, S] True where the source has a real token


class CrossAttention(nn.Module):
    """Multi-head attention of queries ``[B, T, D]`` over a projected memory (see module doc)."""

    def __init__(self, d_model: int, *, num_heads: int = 4, score: str = "dot"):
        super().__init__()
        if score not in CROSS_SCORES:
            raise ConfigError(f"score must be one of {list(CROSS_SCORES)}, got {score!r}")
        self.head_dim = check_heads("cross-attention", d_model, num_heads)
        self.num_heads = num_heads
        self.score = score
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        if score == "additive":
            w = torch.randn(num_heads, self.head_dim) / self.head_dim**0.5
            self.additive_w = nn.Parameter(w)  # [H, Dh], the v of v^T tanh(W1 q + W2 k)

    def project_memory(self, memory: torch.Tensor, source_mask: torch.Tensor) -> MemoryKV:
        """Keys/values of encoder outputs ``memory [B, S, D]``; ``source_mask [B, S]`` bool."""
        kv = rearrange(self.kv(memory), "b s (two h d) -> two b h s d", two=2, h=self.num_heads)
        return MemoryKV(kv[0], kv[1], source_mask[:, None, None, :])

    def weights(self, x: torch.Tensor, memory: MemoryKV) -> torch.Tensor:
        """Attention weights ``[B, H, T, S]`` of queries ``x [B, T, D]``; rows sum to 1."""
        q = rearrange(self.q(x), "b t (h d) -> b h t d", h=self.num_heads)  # [B, H, T, Dh]
        if self.score == "additive":
            scores = additive_scores(q, memory.k, self.additive_w)
        else:
            scores = dot_scores(q, memory.k)
        return naive_attention(scores, memory.v, memory.mask)[1]

    def forward(self, x: torch.Tensor, memory: MemoryKV) -> torch.Tensor:
        """``[B, T, D]``: for each query, the weighted sum of the memory's values."""
        y = torch.matmul(self.weights(x, memory), memory.v)  # [B, H, T, Dh]
        return self.out(rearrange(y, "b h t d -> b t (h d)"))
