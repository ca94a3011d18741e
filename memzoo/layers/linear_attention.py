"""Linear attention: an outer-product fast-weight memory read by feature-mapped queries.

``S_t = S_{t-1} + phi(k_t) v_t^T``, ``o_t = S_t^T phi(q_t)`` per head (Katharopoulos et al.
2020); with ``feature_map="taylor"`` this is the linear-attention half of Based (Arora et al.
2024): ``phi(x) = [1, x, x (x) x / sqrt(2)]`` of a small projected ``x`` (scaled by
``feature_dim ** -0.25``), so ``phi(q) . phi(k)`` is the 2nd-order Taylor series of
``exp(q . k / sqrt(feature_dim))``.

No ``z_t`` denominator (see ``memzoo.ops.linear_attention``): a per-head RMSNorm on the
read-out keeps the output scale fixed instead, for every feature map.

A short causal depthwise convolution (``conv_size`` taps, default 4; 0 turns it off) runs over
the query/key/value projections before the feature map, as every anchor pairs linear
attention with one (Based's short convolutions, Zoology's BaseConv): it lets a key see the
token before it, which associative recall needs, and the fast-weight layers here all have it.

Shape legend: B batch, T time, D d_model, H num_heads, Dh = D / H head dim, F feature dim
after the map (Dh for "elu+1"/"identity", 1 + f + f^2 for "taylor" with f = feature_dim).
State: ``LinearAttentionState(S [B, H, F, Dh], conv [B, K - 1, C])`` with C the width of the
q/k/v projections together (K = 1, an empty cache, without the convolution).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from memzoo.errors import ConfigError
from memzoo.layers._checks import check_heads, check_int
from memzoo.layers._fast_weight import (
    ShortConv,
    check_algorithm,
    parallel_form,
)
from memzoo.layers.base import MemoryLayer, check_input
from memzoo.layers.registry import register
from memzoo.ops.linear_attention import (
    chunk_linear_attention,
    linear_attention_step,
    naive_linear_attention,
)

FEATURE_MAPS = ("elu+1", "identity", "taylor")


class LinearAttentionState(NamedTuple):
    S: torch.Tensor  # [B, H, F, Dh] fast-weight memory
    conv: torch.Tensor  # [B, K - 1, C] last q/k/v projections of the short convolution


def taylor_features(x: torch.Tensor) -> torch.Tensor:
    """Based's 2nd-order Taylor map: ``[..., f] -> [..., 1 + f + f^2]``.

    ``taylor_features(a) . taylor_features(b) = 1 + s + s^2 / 2`` with ``s = a.b / sqrt(f)``.
    """
    x = x * x.shape[-1] ** -0.25
    squares = rearrange(x.unsqueeze(-1) * x.unsqueeze(-2), "... i j -> ... (i j)") / 2**0.5
    return torch.cat([torch.ones_like(x[..., :1]), x, squares], dim=-1)


@register("linear_attention")
class LinearAttention(MemoryLayer):
    """Multi-head linear attention with a chosen feature map, chunked for training.

    Args:
        d_model: model width D.
        num_heads: H, must divide d_model (default 4).
        feature_map: "elu+1" (default, phi = elu(x) + 1), "identity", or "taylor" (Based).
        feature_dim: f, the projected query/key width per head for "taylor" (default 16);
            ignored by the other maps, whose query/key width is the head dim.
        chunk_size: tokens per chunk of the parallel form (default 64).
        conv_size: taps of the short causal convolution over q/k/v (default 4; 0: none).
        algorithm: ``"chunked"`` (default) or ``"naive"`` (the token-by-token reference).

    ``forward(x [B, T, D], state) -> (y [B, T, D], LinearAttentionState)``; T == 1 uses the
    recurrent step, longer inputs the chunked form.
    """

    kind = "short"
    family = "fast-weight"
    state_growth = "O(1)"
    description = "linear attention: S += phi(k) v^T, read phi(q); elu+1, identity or Taylor (Based)"

    def __init__(
        self,
        d_model: int,
        *,
        num_heads: int = 4,
        feature_map: str = "elu+1",
        feature_dim: int = 16,
        chunk_size: int = 64,
        conv_size: int = 4,
        algorithm: str = "chunked",
    ):
        super().__init__(d_model)
        self.algorithm = check_algorithm(algorithm)
        if feature_map not in FEATURE_MAPS:
            raise ConfigError(f"feature_map must be one of {', '.join(FEATURE_MAPS)}; got {feature_map!r}")
        self.head_dim = check_heads(self.layer_name, d_model, num_heads)
        check_int(self.layer_name, "feature_dim", feature_dim)
        check_int(self.layer_name, "chunk_size", chunk_size)
        check_int(self.layer_name, "conv_size", conv_size, 0)
        self.num_heads = num_heads
        self.feature_map = feature_map
        self.chunk_size = chunk_size
        qk_dim = feature_dim if feature_map == "taylor" else self.head_dim
        self.state_dim = 1 + qk_dim + qk_dim**2 if feature_map == "taylor" else qk_dim
        self.q_proj = nn.Linear(d_model, num_heads * qk_dim, bias=False)
        self.k_proj = nn.Linear(d_model, num_heads * qk_dim, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.qkv_widths = (num_heads * qk_dim, num_heads * qk_dim, d_model)
        self.conv = ShortConv(sum(self.qkv_widths), conv_size) if conv_size > 0 else None
        self.norm = nn.RMSNorm(self.head_dim, eps=1e-5)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)

    def _phi(self, x: torch.Tensor) -> torch.Tensor:
        if self.feature_map == "elu+1":
            return F.elu(x) + 1.0
        if self.feature_map == "taylor":
            return taylor_features(x)
        return x

    def init_state(self, batch_size: int, device=None, dtype=None) -> LinearAttentionState:
        device, dtype = self._param_device_dtype(device, dtype)
        shape = (batch_size, self.num_heads, self.state_dim, self.head_dim)
        taps = self.conv.kernel_size - 1 if self.conv is not None else 0
        cache = torch.zeros(batch_size, taps, sum(self.qkv_widths), device=device, dtype=dtype)
        return LinearAttentionState(torch.zeros(shape, device=device, dtype=dtype), cache)

    def state_size(self, seq_len: int) -> int:
        taps = self.conv.kernel_size - 1 if self.conv is not None else 0
        return 4 * (self.num_heads * self.state_dim * self.head_dim + taps * sum(self.qkv_widths))

    def forward(self, x: torch.Tensor, state: LinearAttentionState | None = None):
        check_input(x, self.d_model, self.layer_name)
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        heads = self.num_heads
        qkv = torch.cat([self.q_proj(x), self.k_proj(x), self.v_proj(x)], dim=-1)  # [B, T, C]
        conv_cache = state.conv
        if self.conv is not None:
            qkv, conv_cache = self.conv(qkv, conv_cache)
        q, k, v = qkv.split(self.qkv_widths, dim=-1)
        q = self._phi(rearrange(q, "b t (h d) -> b h t d", h=heads))  # [B, H, T, F]
        k = self._phi(rearrange(k, "b t (h d) -> b h t d", h=heads))  # [B, H, T, F]
        v = rearrange(v, "b t (h d) -> b h t d", h=heads)  # [B, H, T, Dh]
        if x.shape[1] == 1:
            o, memory = linear_attention_step(q[:, :, 0], k[:, :, 0], v[:, :, 0], state.S)
            o = o.unsqueeze(2)  # [B, H, 1, Dh]
        else:
            o, memory = parallel_form(
                self.algorithm,
                chunk_linear_attention,
                naive_linear_attention,
                q,
                k,
                v,
                initial_state=state.S,
                chunk_size=self.chunk_size,
            )
        o = rearrange(self.norm(o), "b h t d -> b t (h d)")
        return self.o_proj(o), LinearAttentionState(memory, conv_cache)
