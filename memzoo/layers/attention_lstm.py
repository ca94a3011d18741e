"""Attention feeding an LSTM: the seed documents' ShortTermMemory unit, working.

Shape legend: B batch, H heads, T new tokens, D d_model, Dh = D / H.

Per position t, causal attention over the context ``x_1..x_t`` gives a context vector
``c_t``; an LSTM integrates ``[x_t, c_t]`` (2D -> D) and its hidden sequence is the output.

What it fixes: the seed's unit took a softmax over an axis of size 1, so every attention
weight was exactly 1 and the "context" was an unweighted sum of values, identical whatever
the query. Here the softmax runs over the key (time) axis under a causal mask, so each
position's weights form a distribution over its past that depends on how well each past
key matches its query (see :meth:`AttentionLSTM.attention_weights`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from memzoo.layers._attention_common import check_rope, check_score
from memzoo.layers._checks import check_heads
from memzoo.layers._kv_cache import KVBuffer
from memzoo.layers.attention import Attention, KVCache
from memzoo.layers.base import MemoryLayer, check_input
from memzoo.layers.registry import register


class AttentionLSTMState(NamedTuple):
    k: torch.Tensor  # [B, H, T_seen, Dh] the attention's key cache
    v: torch.Tensor  # [B, H, T_seen, Dh] the attention's value cache
    h: torch.Tensor  # [B, D] LSTM hidden state
    c: torch.Tensor  # [B, D] LSTM cell state
    buffer: KVBuffer | None = None  # what k, v are views of (see Attention's KVCache)


@register("attention_lstm")
class AttentionLSTM(MemoryLayer):
    """Causal attention produces a context per position; an LSTM integrates [input, context].

    Args:
        d_model: D.
        num_heads: H of the attention (default 4); must divide d_model.
        score: ``"dot"`` (default), ``"cosine"`` or ``"additive"`` (see ``attention``).
        rope: rotary positions in the attention (default True).

    ``forward(x [B, T, D], state: AttentionLSTMState | None) -> (y [B, T, D], state)``;
    y is the LSTM's hidden sequence.
    """

    kind = "short"
    family = "attention+recurrent"
    state_growth = "O(T)"
    description = "causal attention (dot/cosine/additive) giving a context that feeds an LSTM"

    def __init__(self, d_model: int, *, num_heads: int = 4, score: str = "dot", rope: bool = True):
        super().__init__(d_model)
        # validate here first so errors name this layer rather than its attention part
        name = "attention_lstm"
        head_dim = check_heads(name, d_model, num_heads)
        check_score(name, score)
        check_rope(name, rope, head_dim)
        self.attn = Attention(d_model, num_heads=num_heads, score=score, rope=rope)
        self.attn.layer_name = self.layer_name  # errors name this layer, not its part
        self.lstm = nn.LSTM(2 * d_model, d_model, batch_first=True)

    def init_state(self, batch_size: int, device=None, dtype=None) -> AttentionLSTMState:
        device, dtype = self._param_device_dtype(device, dtype)
        kv = self.attn.init_state(batch_size, device, dtype)
        zeros = torch.zeros(batch_size, self.d_model, device=device, dtype=dtype)
        return AttentionLSTMState(kv.k, kv.v, zeros, zeros.clone())

    def state_size(self, seq_len: int) -> int:
        return self.attn.state_size(seq_len) + 4 * 2 * self.d_model

    def forward(self, x: torch.Tensor, state: AttentionLSTMState | None = None):
        check_input(x, self.d_model, self.layer_name)
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        context, kv = self.attn(x, KVCache(state.k, state.v, state.buffer))  # [B, T, D]
        hc = (state.h.unsqueeze(0).contiguous(), state.c.unsqueeze(0).contiguous())  # [1, B, D]
        y, (h, c) = self.lstm(torch.cat((x, context), dim=-1), hc)  # y: [B, T, D]
        return y, AttentionLSTMState(kv.k, kv.v, h.squeeze(0), c.squeeze(0), kv.buffer)

    def attention_weights(self, x: torch.Tensor, state: AttentionLSTMState | None = None):
        """Weights ``[B, H, T, T_seen + T]`` the attention puts on each key; rows sum to 1."""
        kv = None if state is None else KVCache(state.k, state.v)
        return self.attn.attention_weights(x, kv)
