"""Persistent memory: learned key/value slots beside a bounded (sliding-window) attention.

Shape legend: B batch, H heads, T new tokens, S slots, W window, L = min(tokens seen, W)
cached, D d_model, Dh = D / H.

Titans (Behrouz et al. 2025, sec. 3.3) places *persistent memory*, learnable
data-independent parameters, beside attention over a bounded context; Sukhbaatar et al. 2019
("Augmenting Self-attention with Persistent Memory") add them as key/value slots. Here query
t attends (one softmax) to the S slots and to the W tokens ``t - W + 1 .. t`` of a
:class:`~memzoo.layers.sliding_window.SlidingWindowAttention`, whose projections, RoPE and
state this layer reuses. The slots are ``nn.Parameter``s: knowledge that lives in the weights
and is available at every position, including the first. They are not part of the state; the
state is the window's (last W keys/values and a position counter), so it stops growing after
W tokens: O(window). Anything this layer recalls from further back than W tokens must have
been stored in the slots by training; it cannot come from a cache. (Plain ``attention`` is the
explicit O(T) upper bound.)

The slot keys are not rotated, as in the reference implementation (lucidrains/titans-pytorch):
a query, rotated to its position, scores a slot the way it would score a token prepended to
the sequence, which is how the paper adds persistent tokens.

With ``num_slots=0`` the layer computes exactly its sliding-window base with the same weights.

Views (see ``base.py``): ``attention_weights(x)`` ``[B, H, T, T]`` is the softmax's mass on the
sequence's positions, and ``slot_weights(x)`` ``[B, H, T, S]`` its mass on the slots; both come
from one softmax, so a row of the two together sums to 1.
"""

from __future__ import annotations

import torch
from torch import nn

from memzoo.layers._checks import check_int
from memzoo.layers.registry import register
from memzoo.layers.sliding_window import SlidingWindowAttention, WindowState


@register("persistent")
class PersistentMemoryAttention(SlidingWindowAttention):
    """Sliding-window causal attention with ``num_slots`` learned key/value slots per head.

    Args:
        d_model: D.
        window: W >= 1 (default 64), tokens of context (the current one included) a query sees.
        num_heads: H, must divide D (default 4).
        num_slots: S learned slots per head (default 16; 0 gives the plain sliding window, an
            ablation without parametric memory).
        rope: rotary position embedding on the window's queries and keys (default True).

    ``forward(x [B, T, D], state=None) -> (y [B, T, D], WindowState)``. The state is the
    window's: ``k, v: [B, H, L, Dh]`` and ``pos: [B]``; the slots are parameters, so gradients
    reach them but no state carries them. Whole == chunked == token by token holds because the
    window does and every query sees the same slots.
    """

    kind = "long"
    family = "attention"
    state_growth = "O(window)"
    description = (
        "persistent memory (Titans): learned key/value slots (parameters) that every query "
        "attends to beside a sliding window; state O(window)"
    )

    def __init__(self, d_model: int, *, window: int = 64, num_heads: int = 4, num_slots: int = 16, rope=True):
        super().__init__(d_model, window=window, num_heads=num_heads, rope=rope)
        self.num_slots = check_int("persistent", "num_slots", num_slots, 0)
        # Slots on the scale of projected keys/values of unit-variance inputs.
        scale = d_model**-0.5
        self.slot_k = nn.Parameter(torch.randn(num_heads, num_slots, self.head_dim) * scale)
        self.slot_v = nn.Parameter(torch.randn(num_heads, num_slots, self.head_dim) * scale)

    def slot_weights(self, x: torch.Tensor, state: WindowState | None = None) -> torch.Tensor:
        """Softmax weights ``[B, H, T, S]`` the queries of ``x`` put on the slots (the mass the
        rows of :meth:`attention_weights` miss)."""
        return self._weights(x, state)[0]

    def prefix_kv(self, batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The slots, ``[B, H, S, Dh]`` each, visible to every query."""
        return (
            self.slot_k.to(dtype).expand(batch, -1, -1, -1),
            self.slot_v.to(dtype).expand(batch, -1, -1, -1),
        )
