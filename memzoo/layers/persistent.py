"""Persistent memory: learned key/value slots that every query can attend to.

Shape legend: B batch, H heads, T new tokens, P cached past tokens, S slots, D d_model,
Dh = D / H.

Causal multi-head attention whose keys/values are ``[slots; past; present]`` (Sukhbaatar et
al. 2019, "Augmenting Self-attention with Persistent Memory"; the persistent tokens of Titans,
Behrouz et al. 2025). The slots are ``nn.Parameter``s: knowledge that lives in the weights and
is available at every position, including the first. They are not part of the state; the
state is the KV cache of the context, so it grows with the tokens seen.

The layer adds no positional encoding (a model that needs order adds it to ``x``); attention
over the past is therefore order-free apart from causality, and the cache needs no position
counter.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from memzoo.layers._longterm_common import (
    HeadProjection,
    attend,
    check_heads,
    check_int,
    merge_heads,
    prefix_causal_mask,
)
from memzoo.layers.base import MemoryLayer, check_input
from memzoo.layers.registry import register


class KVCache(NamedTuple):
    k: torch.Tensor  # [B, H, P, Dh] keys of every token seen so far
    v: torch.Tensor  # [B, H, P, Dh] their values


@register("persistent")
class PersistentMemoryAttention(MemoryLayer):
    """Multi-head causal attention with ``num_slots`` learned key/value slots prepended.

    Args:
        d_model: D.
        num_heads: H, must divide D (default 4).
        num_slots: S learned slots per head (default 16; 0 gives plain causal attention,
            an ablation without parametric memory).

    ``forward(x [B, T, D], state=None) -> (y [B, T, D], KVCache)``. Query t attends to the S
    slots, to every cached token and to the new tokens ``<= t``. The state is the KV cache
    (``k, v: [B, H, P, Dh]``); the slots are parameters, so gradients reach them but no
    state carries them. Whole == chunked == token by token holds because the cache holds
    exactly the keys/values a later query would have computed itself.
    """

    kind = "long"
    family = "attention"
    state_growth = "O(T)"
    description = (
        "persistent memory: learned key/value slots (parameters) prepended to causal "
        "attention; state is the KV cache"
    )

    def __init__(self, d_model: int, *, num_heads: int = 4, num_slots: int = 16):
        super().__init__(d_model)
        self.head_dim = check_heads("persistent", d_model, num_heads)
        self.num_heads = num_heads
        self.num_slots = check_int("persistent", "num_slots", num_slots, 0)
        self.proj = HeadProjection(d_model, num_heads)
        self.out = nn.Linear(d_model, d_model, bias=False)
        # Slots on the scale of projected keys/values of unit-variance inputs.
        scale = d_model**-0.5
        self.slot_k = nn.Parameter(torch.randn(num_heads, num_slots, self.head_dim) * scale)
        self.slot_v = nn.Parameter(torch.randn(num_heads, num_slots, self.head_dim) * scale)

    def init_state(self, batch_size: int, device=None, dtype=None) -> KVCache:
        device, dtype = self._param_device_dtype(device, dtype)
        shape = (batch_size, self.num_heads, 0, self.head_dim)
        return KVCache(
            torch.zeros(shape, device=device, dtype=dtype),
            torch.zeros(shape, device=device, dtype=dtype),
        )

    def state_size(self, seq_len: int) -> int:
        return 4 * 2 * self.d_model * seq_len  # keys and values of every token: 2 * H * Dh

    def forward(self, x: torch.Tensor, state: KVCache | None = None):
        check_input(x, self.d_model, self.layer_name)
        batch, t_new, _ = x.shape
        if state is None:
            state = self.init_state(batch, x.device, x.dtype)
        q, k, v = self.proj(x)  # [B, H, T, Dh]
        k_all = torch.cat((state.k, k), dim=2)  # [B, H, P + T, Dh]
        v_all = torch.cat((state.v, v), dim=2)
        slots_k = self.slot_k.to(x.dtype).expand(batch, -1, -1, -1)  # [B, H, S, Dh]
        slots_v = self.slot_v.to(x.dtype).expand(batch, -1, -1, -1)
        keys = torch.cat((slots_k, k_all), dim=2)  # [B, H, S + P + T, Dh]
        values = torch.cat((slots_v, v_all), dim=2)
        # Slots and cache form one always-visible prefix; the new tokens are causal.
        prefix = self.num_slots + state.k.shape[2]
        mask = prefix_causal_mask(t_new, prefix, device=x.device)
        out = attend(q, keys, values, mask)  # [B, H, T, Dh]
        return self.out(merge_heads(out)), KVCache(k_all, v_all)
