"""Causal multi-head softmax attention: short-term memory as a growing key/value cache.

Shape legend: B batch, H heads, T new tokens, S = T_seen + T keys, D d_model, Dh = D / H.

The state is the KV cache (keys after RoPE/normalisation, values), ``[B, H, T_seen, Dh]``
each; it grows by T every call, so the memory is exact but O(T). A chunk of new queries
sees every cached key plus the causal part of its own chunk, so running a sequence whole,
in chunks, or token by token gives the same result.

Appends are amortised O(1) when decoding (grad mode off): the cached tensors are views of
a capacity-doubling buffer that a new token is written into in place when no other state
has written past the cache's length, and copied otherwise, so a state a caller holds never
changes (see ``_kv_cache.py``). With grad mode on, an append is a plain ``torch.cat``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from memzoo.layers._attention_common import (
    apply_rope,
    causal_mask,
    check_rope,
    check_score,
    shared_rope_tables,
)
from memzoo.layers._checks import check_heads
from memzoo.layers._kv_cache import KVBuffer, append_kv
from memzoo.layers.base import MemoryLayer, check_input
from memzoo.layers.registry import register
from memzoo.ops.attention_scores import additive_scores, dot_scores, naive_attention

# Cosine scores lie in [-1, 1]; the learned per-head temperature starts here so that the
# softmax can be peaked from the start, and is capped so it cannot blow up.
COSINE_INIT_SCALE = 10.0
COSINE_MAX_SCALE = 100.0


class KVCache(NamedTuple):
    k: torch.Tensor  # [B, H, T_seen, Dh] keys as attended (rotated / normalised)
    v: torch.Tensor  # [B, H, T_seen, Dh]
    # The buffer k and v may be views of (None: they are not); not a tensor, so state
    # helpers skip it. It only decides whether the next append may write in place.
    buffer: KVBuffer | None = None


@register("attention")
class Attention(MemoryLayer):
    """Multi-head causal softmax attention with a KV cache.

    Args:
        d_model: D, input and output width.
        num_heads: H (default 4); must divide d_model.
        score: how a query scores a key —
            ``"dot"`` (default): ``q.k / sqrt(Dh)``;
            ``"cosine"``: ``tau_h * cos(q, k)`` with a learned per-head temperature
            ``tau_h`` (starts at 10, capped at 100);
            ``"additive"``: Bahdanau ``w_h . tanh(q + k)`` per head, where the query and
            key projections are Bahdanau's W1 and W2.
        rope: rotary position embedding on q and k (default True), positions offset by
            the cache length. For dot and cosine the score then depends on relative
            position only. For additive the rotated q and k enter the tanh, which gives
            the score absolute-position information (not a pure relative dependence).

    ``forward(x [B, T, D], state: KVCache | None) -> (y [B, T, D], KVCache)``. The returned
    cache's ``k, v`` are ``[B, H, T_seen + T, Dh]``; ``state_size`` counts those tokens, not
    the spare capacity of the buffer behind them (at most twice as many positions).
    """

    kind = "short"
    family = "attention"
    state_growth = "O(T)"
    description = "multi-head causal softmax attention (dot/cosine/additive scores, RoPE), KV cache"

    def __init__(self, d_model: int, *, num_heads: int = 4, score: str = "dot", rope: bool = True):
        super().__init__(d_model)
        name = "attention"
        self.head_dim = check_heads(name, d_model, num_heads)
        self.num_heads = num_heads
        self.score = check_score(name, score)
        self.rope = check_rope(name, rope, self.head_dim)
        self.qkv = nn.Linear(d_model, 3 * d_model)  # one fused projection for q, k, v
        self.out = nn.Linear(d_model, d_model)
        if score == "cosine":
            self.log_scale = nn.Parameter(torch.full((num_heads,), math.log(COSINE_INIT_SCALE)))
        if score == "additive":
            w = torch.randn(num_heads, self.head_dim) / self.head_dim**0.5
            self.additive_w = nn.Parameter(w)  # [H, Dh], the v of v^T tanh(W1 q + W2 k)

    # ---- state -------------------------------------------------------------------------
    def init_state(self, batch_size: int, device=None, dtype=None) -> KVCache:
        device, dtype = self._param_device_dtype(device, dtype)
        shape = (batch_size, self.num_heads, 0, self.head_dim)
        return KVCache(
            torch.zeros(shape, device=device, dtype=dtype), torch.zeros(shape, device=device, dtype=dtype)
        )

    def state_size(self, seq_len: int) -> int:
        return 4 * 2 * seq_len * self.d_model  # keys and values, H * Dh = D each per token

    # ---- pieces ------------------------------------------------------------------------
    def project(self, x: torch.Tensor, past: int):
        """q, k, v ``[B, H, T, Dh]`` of ``x`` whose first token sits at position ``past``.

        Keys come back as they are cached (rotated, unit-norm for cosine); for cosine the
        queries are unit-norm times the temperature, so the score is a plain ``q.k``.
        """
        # unbind, not slicing: the backward of qkv[:2] / qkv[2] zero-fills two full-size
        # gradients, unbind's backward is one stack. view + permute rather than einops: a
        # decode step is overhead-bound, and einops' two calls were ~15% of its time.
        batch, length = x.shape[0], x.shape[1]
        qkv = self.qkv(x).view(batch, length, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [B, H, T, Dh] each
        if self.score == "cosine":
            q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        if self.rope:
            rotation = shared_rope_tables(past, x.shape[1], self.head_dim, x.device, x.dtype)
            q, k = apply_rope(q, rotation), apply_rope(k, rotation)
        if self.score == "cosine":
            scale = self.log_scale.clamp(max=math.log(COSINE_MAX_SCALE)).exp()
            q = q * scale.view(1, -1, 1, 1).to(q.dtype)
        return q, k, v

    def scores(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """Explicit scores ``[B, H, Tq, Tk]`` of projected q and k (``[B, H, T, Dh]``).

        The SDPA path computes the same for dot and cosine without materialising them.
        """
        if self.score == "additive":
            return additive_scores(q, k, self.additive_w)
        return dot_scores(q, k, 1.0 if self.score == "cosine" else None)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``[B, H, Tq, Dh]`` outputs of queries that are the last Tq of the Tk key positions."""
        t_q, t_k = q.shape[2], k.shape[2]
        if self.score == "additive":
            mask = causal_mask(t_q, t_k, q.device) if t_q > 1 else None
            return naive_attention(self.scores(q, k), v, mask)[0]
        scale = 1.0 if self.score == "cosine" else None  # None: SDPA's 1/sqrt(Dh)
        if t_q == t_k:  # no cache: the fast path, top-left causal equals lower-right here
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
        # A cache: queries see all cached keys, so is_causal (top-left) would be wrong.
        mask = causal_mask(t_q, t_k, q.device) if t_q > 1 else None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)

    # ---- the layer ---------------------------------------------------------------------
    def forward(self, x: torch.Tensor, state: KVCache | None = None):
        check_input(x, self.d_model, self.layer_name)
        past = 0 if state is None else state.k.shape[2]
        q, k, v = self.project(x, past)
        if state is None:  # no copy, unless inside reserve_kv (a prompt that decoding continues)
            k, v, buffer = append_kv(None, None, None, k, v)
        else:
            k, v, buffer = append_kv(state.k, state.v, state.buffer, k, v)  # [B, H, S, Dh]
        y = self.attend(q, k, v)  # [B, H, T, Dh]
        # transpose + reshape, not einops: a decode step is overhead-bound (see project)
        y = y.transpose(1, 2).reshape(x.shape[0], x.shape[1], self.d_model)
        return self.out(y), KVCache(k, v, buffer)

    def attention_weights(self, x: torch.Tensor, state: KVCache | None = None) -> torch.Tensor:
        """Softmax weights ``[B, H, T, T_seen + T]`` the queries of ``x`` put on every key.

        Computed explicitly (not through SDPA), for inspection and tests; masked (future)
        keys get weight exactly 0 and each row sums to 1.
        """
        check_input(x, self.d_model, self.layer_name)
        past = 0 if state is None else state.k.shape[2]
        q, k, v = self.project(x, past)
        if past:
            k = torch.cat((state.k, k), dim=2)
            v = torch.cat((state.v, v), dim=2)
        mask = causal_mask(q.shape[2], k.shape[2], x.device)
        return naive_attention(self.scores(q, k), v, mask)[1]
