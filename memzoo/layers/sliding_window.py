"""Sliding-window causal attention: short-term memory bounded to the last ``window`` tokens.

Shape legend: B batch, H heads, T new tokens, L = min(tokens seen, window) cached,
D d_model, Dh = D / H, W window.

Query at position p sees keys at positions ``p - W + 1 .. p`` (itself and the W - 1 before
it). The state keeps only the last W keys/values plus a per-sequence position counter
(for RoPE), so its size stops growing once W tokens have been seen: O(window).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from memzoo.errors import ConfigError
from memzoo.layers._attention_common import (
    apply_rope,
    band_mask,
    check_rope,
    rope_tables,
)
from memzoo.layers._checks import check_heads
from memzoo.layers.base import MemoryLayer, check_input
from memzoo.layers.registry import register
from memzoo.ops.attention_scores import dot_scores, masked_softmax

# Queries are processed in blocks of at least this many (or W) so a long sequence costs
# O(T * W) rather than O(T^2): each block only looks at the keys its band can reach.
MIN_QUERY_BLOCK = 128


class WindowState(NamedTuple):
    k: torch.Tensor  # [B, H, L, Dh] last L <= W keys (rotated)
    v: torch.Tensor  # [B, H, L, Dh]
    pos: torch.Tensor  # [B] int64, tokens seen so far = position of the next token


@register("sliding_window")
class SlidingWindowAttention(MemoryLayer):
    """Multi-head causal dot-product attention restricted to the last ``window`` tokens.

    Args:
        d_model: D.
        window: W >= 1 (default 64), how many tokens (the current one included) a query sees.
        num_heads: H (default 4); must divide d_model.
        rope: rotary position embedding on q and k (default True), at absolute positions
            taken from the state's counter, so chunked == whole.

    ``forward(x [B, T, D], state: WindowState | None) -> (y [B, T, D], WindowState)``.
    """

    kind = "short"
    family = "attention"
    state_growth = "O(window)"
    description = "causal multi-head attention over the last `window` tokens (bounded KV buffer)"

    def __init__(self, d_model: int, *, window: int = 64, num_heads: int = 4, rope: bool = True):
        super().__init__(d_model)
        name = self.layer_name  # "sliding_window", or the registered name of a subclass
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ConfigError(f"{name}: window must be an integer >= 1, got {window!r}")
        self.window = window
        self.head_dim = check_heads(name, d_model, num_heads)
        self.num_heads = num_heads
        self.rope = check_rope(name, rope, self.head_dim)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def init_state(self, batch_size: int, device=None, dtype=None) -> WindowState:
        device, dtype = self._param_device_dtype(device, dtype)
        shape = (batch_size, self.num_heads, 0, self.head_dim)
        return WindowState(
            torch.zeros(shape, device=device, dtype=dtype),
            torch.zeros(shape, device=device, dtype=dtype),
            torch.zeros(batch_size, device=device, dtype=torch.long),
        )

    def state_size(self, seq_len: int) -> int:
        # keys + values of min(seq_len, W) tokens, plus one counter element
        return 4 * (2 * min(seq_len, self.window) * self.d_model + 1)

    def project(self, x: torch.Tensor, pos: torch.Tensor):
        """q, k, v ``[B, H, T, Dh]``; sequence b's first token of ``x`` is at ``pos[b]``."""
        q, k, v = rearrange(
            self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.num_heads
        ).unbind(0)
        if self.rope:
            positions = pos.unsqueeze(1) + torch.arange(x.shape[1], device=x.device)  # [B, T]
            rotation = rope_tables(positions, self.head_dim, x.dtype)  # [B, 1, T, Dh/2]
            q, k = apply_rope(q, rotation), apply_rope(k, rotation)
        return q, k, v

    def prefix_kv(self, batch: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Keys and values ``[B, H, P, Dh]`` that every query sees besides its band, or None.

        The plain window has none; ``persistent`` returns its learned slots here.
        """
        return None

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Band attention of queries ``[B, H, T, Dh]``, the last T of keys ``[B, H, S, Dh]``
        (plus the always-visible :meth:`prefix_kv`)."""
        prefix = self.prefix_kv(q.shape[0], q.dtype)
        t_q, t_k = q.shape[2], k.shape[2]
        past = t_k - t_q  # cached keys in front of this chunk
        block = max(MIN_QUERY_BLOCK, self.window)
        outs = []
        for start in range(0, t_q, block):
            stop = min(start + block, t_q)
            # keys the band of queries start..stop-1 can reach, in key-index coordinates
            lo = max(0, past + start - self.window + 1)
            hi = past + stop
            mask = band_mask(stop - start, hi - lo, self.window, q.device)
            keys, values = k[:, :, lo:hi], v[:, :, lo:hi]
            if prefix is not None:  # [prefix; band], the prefix visible to every query
                keys, values = torch.cat((prefix[0], keys), dim=2), torch.cat((prefix[1], values), dim=2)
                mask = torch.cat((mask.new_ones(mask.shape[0], prefix[0].shape[2]), mask), dim=1)
            outs.append(F.scaled_dot_product_attention(q[:, :, start:stop], keys, values, attn_mask=mask))
        return torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]

    def forward(self, x: torch.Tensor, state: WindowState | None = None):
        check_input(x, self.d_model, self.layer_name)
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        q, k, v = self.project(x, state.pos)
        if state.k.shape[2]:
            k = torch.cat((state.k, k), dim=2)  # [B, H, L + T, Dh]
            v = torch.cat((state.v, v), dim=2)
        y = rearrange(self.attend(q, k, v), "b h t d -> b t (h d)")
        keep = min(k.shape[2], self.window)
        # copy the kept tail so the state does not pin the whole chunk's keys in memory
        new_state = WindowState(
            k[:, :, -keep:].contiguous(), v[:, :, -keep:].contiguous(), state.pos + x.shape[1]
        )
        return self.out(y), new_state

    def attention_weights(self, x: torch.Tensor, state: WindowState | None = None) -> torch.Tensor:
        """Softmax weights ``[B, H, T, L + T]`` the queries of ``x`` put on the buffer and the
        chunk (``[B, H, T, T]`` with no state), exactly 0 outside each query's window. Rows
        sum to 1 minus the mass on the :meth:`prefix_kv` (``persistent``'s slot weights)."""
        return self._weights(x, state)[1]

    def _weights(self, x: torch.Tensor, state: WindowState | None):
        """One explicit softmax, split: ``(on_prefix, on_positions)``, ``[B, H, T, P]`` on the
        :meth:`prefix_kv` (None without one) and ``[B, H, T, L + T]`` on the buffer and chunk."""
        check_input(x, self.d_model, self.layer_name)
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        q, k, _ = self.project(x, state.pos)
        k = torch.cat((state.k, k), dim=2)
        mask = band_mask(q.shape[2], k.shape[2], self.window, x.device)
        prefix = self.prefix_kv(x.shape[0], x.dtype)
        if prefix is None:
            return None, masked_softmax(dot_scores(q, k), mask)
        k = torch.cat((prefix[0], k), dim=2)
        mask = torch.cat((mask.new_ones(mask.shape[0], prefix[0].shape[2]), mask), dim=1)
        weights = masked_softmax(dot_scores(q, k), mask)  # [B, H, T, P + L + T]
        return weights.split((prefix[0].shape[2], weights.shape[-1] - prefix[0].shape[2]), dim=-1)
