"""Neural long-term memory that learns at test time (Titans, Behrouz et al. 2025).

Shape legend: B batch, H heads, T new tokens, C chunk_size, D d_model, Dh = D / H,
F = hidden_mult * Dh (hidden width of the memory MLP).

The memory of each head is a 2-layer MLP ``M(x) = W2 silu(W1 x)`` whose weights are the
state. Every ``chunk_size`` tokens it is trained on the chunk's key -> value pairs by one
momentum step on the associative loss ``mean_d (M(k_t) - v_t)^2`` (see
:mod:`memzoo.ops.neural_memory`), with data-dependent gates, each a sigmoid of a linear map
of the input: a learning rate ``theta_t`` per token, and per chunk a momentum ``eta`` (how
long a surprise lasts) and a weight decay ``alpha`` (forgetting), from the mean gate logit
over the chunk's tokens. Reading is a forward pass of the current weights on the query:
``y_t = M(q_t)``. Queries and keys are L2-normalised per head.

**Whole == chunked == token by token.** Chunks are counted from the start of the sequence.
A token reads with the weights written by the last *completed* chunk; the weights change
only when a chunk's last token arrives. The state holds the weights, the momentum and the
inputs of the not-yet-full chunk (recomputed into keys, values and gates when it completes),
so where the caller cuts the sequence never matters.

The inner-loop gradients are analytic and the update is an ordinary differentiable
expression, so the outer (training) gradients reach the projections, the gates and the
initial weights ``w1_init, w2_init`` (the meta-learned starting memory), and flow through
the carried state.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from memzoo.layers._longterm_common import (
    HeadProjection,
    batch_counter,
    check_heads,
    check_int,
    merge_heads,
    pad_time,
    read_counter,
)
from memzoo.layers.base import MemoryLayer, check_input
from memzoo.layers.registry import register
from memzoo.ops.neural_memory import MLPMemory, chunk_update, mlp_forward

# Gate biases at initialisation: momentum eta ~ 0.73, learning rate theta ~ 0.5, decay alpha ~ 0.01.
_ETA_BIAS, _THETA_BIAS, _ALPHA_BIAS = 1.0, 0.0, -4.6


class NeuralMemoryState(NamedTuple):
    w1: torch.Tensor  # [B, H, F, Dh] memory MLP, first layer
    w2: torch.Tensor  # [B, H, Dh, F] memory MLP, second layer
    s1: torch.Tensor  # [B, H, F, Dh] momentum ("surprise") of w1
    s2: torch.Tensor  # [B, H, Dh, F] momentum of w2
    pending: torch.Tensor  # [B, C, D] inputs of the unfinished chunk (first `count` rows)
    count: torch.Tensor  # [B] int64 tokens in the unfinished chunk (0 <= count < C)


@register("neural_memory")
class NeuralMemory(MemoryLayer):
    """Titans-style neural memory: an MLP per head trained on the fly, one step per chunk.

    Args:
        d_model: D.
        num_heads: H, must divide D (default 4).
        chunk_size: C tokens per memory update, counted from the start (default 16).
        hidden_mult: F = hidden_mult * Dh, hidden width of the memory MLP (default 2).

    ``forward(x [B, T, D], state=None) -> (y [B, T, D], NeuralMemoryState)``. State bytes are
    constant: ``4 * (4 * H * F * Dh + C * D + 1)`` per sequence.
    """

    kind = "long"
    family = "neural-memory"
    state_growth = "O(1)"
    description = (
        "neural memory (Titans): per-head MLP weights trained at test time by momentum "
        "gradient steps on ||M(k) - v||^2 each chunk, with forgetting; read y = M(q)"
    )

    def __init__(self, d_model: int, *, num_heads: int = 4, chunk_size: int = 16, hidden_mult: int = 2):
        super().__init__(d_model)
        self.head_dim = check_heads("neural_memory", d_model, num_heads)
        self.num_heads = num_heads
        self.chunk_size = check_int("neural_memory", "chunk_size", chunk_size, 1)
        self.hidden = check_int("neural_memory", "hidden_mult", hidden_mult, 1) * self.head_dim
        self.proj = HeadProjection(d_model, num_heads)
        self.gates = nn.Linear(d_model, 3 * num_heads)  # eta, theta, alpha per head
        with torch.no_grad():
            bias = torch.tensor([_ETA_BIAS, _THETA_BIAS, _ALPHA_BIAS]).repeat_interleave(num_heads)
            self.gates.bias.copy_(bias)
        self.out = nn.Linear(d_model, d_model, bias=False)
        dh, hid = self.head_dim, self.hidden
        self.w1_init = nn.Parameter(torch.randn(num_heads, hid, dh) / math.sqrt(dh))
        self.w2_init = nn.Parameter(torch.randn(num_heads, dh, hid) / math.sqrt(hid))

    # --- state -------------------------------------------------------------------------

    def init_state(self, batch_size: int, device=None, dtype=None) -> NeuralMemoryState:
        device, dtype = self._param_device_dtype(device, dtype)

        def start(param):  # the learned starting memory, shared by every row
            return param.to(device=device, dtype=dtype).unsqueeze(0).expand(batch_size, -1, -1, -1)

        w1, w2 = start(self.w1_init), start(self.w2_init)
        return NeuralMemoryState(
            w1=w1,
            w2=w2,
            s1=torch.zeros_like(w1),
            s2=torch.zeros_like(w2),
            pending=torch.zeros(batch_size, self.chunk_size, self.d_model, device=device, dtype=dtype),
            count=batch_counter(0, batch_size, device),
        )

    def state_size(self, seq_len: int) -> int:
        weights = 4 * self.num_heads * self.hidden * self.head_dim  # w1, w2, s1, s2
        return 4 * (weights + self.chunk_size * self.d_model + 1)

    # --- forward -------------------------------------------------------------------------

    def write_inputs(self, chunk: torch.Tensor):
        """What :func:`chunk_update` needs from a chunk of inputs ``[B, C, D]``.

        Returns keys, values ``[B, H, C, Dh]``, ``theta`` ``[B, H, C]``, ``log_eta`` and
        ``log_keep`` ``[B, H]``.
        """
        _, k, v = self.proj(chunk)
        k = F.normalize(k, dim=-1)
        z_eta, z_theta, z_alpha = rearrange(self.gates(chunk), "b c (g h) -> g b h c", g=3)
        z_eta, z_alpha = z_eta.mean(dim=-1), z_alpha.mean(dim=-1)  # one momentum/decay a chunk
        # log eta = logsigmoid(z); log(1 - alpha) = logsigmoid(-z): finite even when saturated.
        return k, v, torch.sigmoid(z_theta), F.logsigmoid(z_eta), F.logsigmoid(-z_alpha)

    def read(self, state: NeuralMemoryState, x: torch.Tensor) -> torch.Tensor:
        """Read the memory in ``state`` for inputs ``x`` ``[B, T, D]``: ``[B, H, T, Dh]``."""
        q, _, _ = self.proj(x)
        return mlp_forward(MLPMemory(state.w1, state.w2), F.normalize(q, dim=-1))

    def forward(self, x: torch.Tensor, state: NeuralMemoryState | None = None):
        check_input(x, self.d_model, self.layer_name)
        batch, t_new, _ = x.shape
        if state is None:
            state = self.init_state(batch, x.device, x.dtype)
        size = self.chunk_size
        count = read_counter(state.count)
        mem, momentum = MLPMemory(state.w1, state.w2), MLPMemory(state.s1, state.s2)
        pending = state.pending[:, :count]  # [B, count, D]
        q, _, _ = self.proj(x)
        q = F.normalize(q, dim=-1)  # [B, H, T, Dh]
        outs, start = [], 0
        while start < t_new:
            n = min(size - count, t_new - start)  # a piece never crosses a chunk boundary
            # Read with the weights of the last completed chunk.
            outs.append(mlp_forward(mem, q[:, :, start : start + n]))
            pending = torch.cat((pending, x[:, start : start + n]), dim=1)
            count, start = count + n, start + n
            if count == size:  # the chunk is complete: one test-time training step
                mem, momentum = chunk_update(mem, momentum, *self.write_inputs(pending))
                pending, count = pending[:, :0], 0
        y = self.out(merge_heads(torch.cat(outs, dim=2) if outs else q))  # q is empty if T == 0
        new_state = NeuralMemoryState(
            w1=mem.w1,
            w2=mem.w2,
            s1=momentum.w1,
            s2=momentum.w2,
            pending=pad_time(pending, size),
            count=batch_counter(count, batch, x.device),
        )
        return y, new_state
