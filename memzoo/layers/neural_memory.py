"""Neural long-term memory that learns at test time (Titans, Behrouz et al. 2025).

Shape legend: B batch, H heads, T new tokens, C chunk_size, D d_model, Dh = D / H,
F = hidden_mult * Dh (hidden width of the memory MLP), K conv_size, P = tokens of the
unfinished chunk (0 <= P < C).

The memory of each head is a 2-layer MLP with a normalised residual output,
``M(x) = x + gamma * rmsnorm(W2 silu(W1 x))``, whose weights ``W1, W2`` are the state. As in
Titans (sec. 4.4) queries, keys and values are linear projections followed by a short causal
depthwise convolution and SiLU; queries and keys are L2-normalised per head. Every
``chunk_size`` tokens the memory is trained on the chunk's key -> value pairs by one momentum
step whose gradient is the *sum* of the per-token steps ``theta_t grad ||M(k_t) - v_t||^2``
(see :mod:`memzoo.ops.neural_memory`). The gates are data-dependent, each from a linear map of
the input: a learning rate per token ``theta_t = theta_max_h * sigmoid(.)`` whose maximum
``theta_max_h`` is learned per head, and per chunk a momentum ``eta`` (how long a surprise
lasts) and a decay ``alpha`` (forgetting) from the mean gate logit over the chunk's tokens.

Reading is a forward pass of the current weights on the query, ``M(q_t)``, then a per-head
RMS norm, a sigmoid output gate from ``x_t`` and the output projection (Titans: "normalization
and gating with a linear layer before the final output projection").

**Initialisation.** The decay starts at ``alpha ~ 3e-4`` per chunk, so a write still holds
~92% of its weight after 256 chunks (4096 tokens at C = 16) and the model learns to forget;
the momentum at ``eta ~ 0.5``; ``theta`` at half its maximum, which starts at 0.5.

**Where this departs from the paper**: momentum and decay are constant within a chunk (the
paper's parallel form and the reference implementation do the same; it makes a chunk one
step); the memory's output is RMS-normalised with a residual, as TTT and the
reference implementation do (a LayerNorm there), because gradient descent on a plain MLP
diverges as its weights grow (see :mod:`memzoo.ops.neural_memory`).

**Whole == chunked == token by token.** Chunks are counted from the start of the sequence.
A token reads the weights written by the last *completed* chunk; the weights change only when
a chunk's last token arrives. The state holds the weights, the momentum, the last K - 1
projected inputs of the convolution, and the keys, values and gate logits of the unfinished
chunk, so where the caller cuts the sequence never matters.

The inner-loop gradients are analytic and the update is an ordinary differentiable
expression, so the outer (training) gradients reach the projections, the gates and the
initial weights ``w1_init, w2_init`` (the meta-learned starting memory, marked
``_no_weight_decay`` so an optimiser does not pull the memory towards zero), and flow through
the carried state.

**Write gates** (``write_gates(x)``, ``[B, T, H]`` each, from ``_gate_values``, which
``forward`` calls): ``step_size`` ``theta_t`` per token; ``momentum`` ``eta`` and ``decay``
``alpha`` per chunk, repeated over the chunk's tokens and ``NaN`` on the tokens of a trailing
unfinished chunk (its step has not been taken; the gates it will get depend on tokens to come).
"""

from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from memzoo.errors import ConfigError
from memzoo.layers._checks import check_heads, check_int
from memzoo.layers._fast_weight import ShortConv
from memzoo.layers._longterm_common import (
    batch_counter,
    merge_heads,
    pad_to_length,
    read_counter,
    split_heads,
)
from memzoo.layers.base import MemoryLayer, check_input, last_boundary
from memzoo.layers.registry import register
from memzoo.ops.neural_memory import MLPMemory, chunk_neural_memory

# Gate biases at initialisation: momentum eta = sigmoid(0) = 0.5, learning rate theta at half
# its maximum, decay alpha = sigmoid(-8) ~ 3.4e-4 per chunk (memory kept over long distances).
_ETA_BIAS, _THETA_BIAS, _ALPHA_BIAS = 0.0, 0.0, -8.0


class NeuralMemoryState(NamedTuple):
    w1: torch.Tensor  # [B, H, F, Dh] memory MLP, first layer
    w2: torch.Tensor  # [B, H, Dh, F] memory MLP, second layer
    s1: torch.Tensor  # [B, H, F, Dh] momentum ("surprise") of w1
    s2: torch.Tensor  # [B, H, Dh, F] momentum of w2
    conv: torch.Tensor  # [B, K - 1, 3D] last projected q/k/v inputs of the causal convolution
    pending_k: torch.Tensor  # [B, H, C, Dh] keys of the unfinished chunk (first `count` rows)
    pending_v: torch.Tensor  # [B, H, C, Dh] its values
    pending_z: torch.Tensor  # [B, H, C, 3] its gate logits (eta, theta, alpha)
    count: torch.Tensor  # [B] int64 tokens in the unfinished chunk (0 <= count < C)


@register("neural_memory")
class NeuralMemory(MemoryLayer):
    """Titans neural memory: an MLP per head trained on the fly, one summed step per chunk.

    Args:
        d_model: D.
        num_heads: H, must divide D (default 4).
        chunk_size: C tokens per memory update, counted from the start (default 16).
        hidden_mult: F = hidden_mult * Dh, hidden width of the memory MLP (default 4, the
            reference implementation's expansion factor; 2 learned recall less reliably).
        conv_size: K taps of the causal depthwise convolution on q, k, v (default 4; 1 = none).
        theta_max: initial value of the learned per-head maximum learning rate (default 0.5).

    ``forward(x [B, T, D], state=None) -> (y [B, T, D], NeuralMemoryState)``. State bytes are
    constant: ``4 * (4 H F Dh + 3 D (K - 1) + C (2 D + 3 H) + 1)`` per sequence.
    """

    kind = "long"
    family = "neural-memory"
    state_growth = "O(1)"
    description = (
        "neural memory (Titans): per-head MLP weights trained at test time, per-token steps on "
        "||M(k) - v||^2 summed each chunk, with momentum and forgetting; read y = M(q)"
    )
    gate_units: ClassVar[dict[str, str]] = {
        "step_size": "theta_t in (0, theta_max_h), the learning rate of token t's step on its loss",
        "momentum": "eta in (0, 1) per chunk, how much of the last surprise the next step keeps",
        "decay": "alpha in (0, 1) per chunk, the share of the weights forgotten: W <- (1 - alpha) W + S",
    }

    def __init__(
        self,
        d_model: int,
        *,
        num_heads: int = 4,
        chunk_size: int = 16,
        hidden_mult: int = 4,
        conv_size: int = 4,
        theta_max: float = 0.5,
    ):
        super().__init__(d_model)
        name = "neural_memory"
        self.head_dim = check_heads(name, d_model, num_heads)
        self.num_heads = num_heads
        self.chunk_size = check_int(name, "chunk_size", chunk_size, 1)
        self.hidden = check_int(name, "hidden_mult", hidden_mult, 1) * self.head_dim
        self.conv_size = check_int(name, "conv_size", conv_size, 1)
        if isinstance(theta_max, bool) or not isinstance(theta_max, (int, float)) or not theta_max > 0:
            raise ConfigError(f"{name}: theta_max must be a number > 0, got {theta_max!r}")
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        # Depthwise causal convolution over time, one filter per q/k/v channel (the fast-weight
        # layers' ShortConv: its backward is several times faster than F.conv1d's on a CPU).
        self.conv = ShortConv(3 * d_model, self.conv_size)
        self.gates = nn.Linear(d_model, 3 * num_heads)  # eta, theta, alpha per head
        with torch.no_grad():
            bias = torch.tensor([_ETA_BIAS, _THETA_BIAS, _ALPHA_BIAS]).repeat_interleave(num_heads)
            self.gates.bias.copy_(bias)
        self.log_theta_max = nn.Parameter(torch.full((num_heads,), math.log(theta_max)))
        # Gains are flat [H * Dh] (viewed per head where used): an optimiser that decays only
        # matrices leaves them alone, as it does every norm's gain.
        # Scale of the memory's normalised output: 1/sqrt(Dh) gives it unit norm, like the keys.
        self.mem_gamma = nn.Parameter(torch.full((d_model,), self.head_dim**-0.5))
        self.norm_weight = nn.Parameter(torch.ones(d_model))  # output RMS norm
        self.out_gate = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model, bias=False)
        dh, hid = self.head_dim, self.hidden
        self.w1_init = nn.Parameter(torch.randn(num_heads, hid, dh) / math.sqrt(dh))
        self.w2_init = nn.Parameter(torch.randn(num_heads, dh, hid) / math.sqrt(hid))
        for param in (self.w1_init, self.w2_init):
            param._no_weight_decay = True  # the starting memory, not a projection: never decay it

    # --- state -------------------------------------------------------------------------

    def init_state(self, batch_size: int, device=None, dtype=None) -> NeuralMemoryState:
        device, dtype = self._param_device_dtype(device, dtype)

        def start(param):  # the learned starting memory, shared by every row
            return param.to(device=device, dtype=dtype).unsqueeze(0).expand(batch_size, -1, -1, -1)

        def zeros(*shape):
            return torch.zeros(batch_size, *shape, device=device, dtype=dtype)

        w1, w2 = start(self.w1_init), start(self.w2_init)
        heads, size = self.num_heads, self.chunk_size
        return NeuralMemoryState(
            w1=w1,
            w2=w2,
            s1=torch.zeros_like(w1),
            s2=torch.zeros_like(w2),
            conv=zeros(self.conv_size - 1, 3 * self.d_model),
            pending_k=zeros(heads, size, self.head_dim),
            pending_v=zeros(heads, size, self.head_dim),
            pending_z=zeros(heads, size, 3),
            count=batch_counter(0, batch_size, device),
        )

    def state_size(self, seq_len: int) -> int:
        weights = 4 * self.num_heads * self.hidden * self.head_dim  # w1, w2, s1, s2
        conv = (self.conv_size - 1) * 3 * self.d_model
        pending = self.chunk_size * (2 * self.d_model + 3 * self.num_heads)
        return 4 * (weights + conv + pending + 1)

    def boundary_state_size(self, segment_len: int, seq_len: int | None = None) -> int:
        """The memory MLP's weights and momentum and the conv cache: the chunk being
        collected is empty at a boundary when ``segment_len`` is a multiple of ``chunk_size``."""
        carried = self.state_size(last_boundary(segment_len, seq_len))
        if segment_len % self.chunk_size:
            return carried
        return carried - 4 * self.chunk_size * (2 * self.d_model + 3 * self.num_heads)

    # --- forward -------------------------------------------------------------------------

    def project(self, x: torch.Tensor, conv_state: torch.Tensor):
        """Queries, keys, values ``[B, H, T, Dh]`` of ``x`` ``[B, T, D]`` and the new conv state.

        ``conv_state`` ``[B, K - 1, 3D]`` holds the projections of the K - 1 tokens before x.
        """
        mixed, new_conv = self.conv(self.qkv(x), conv_state)  # [B, T, 3D], [B, K - 1, 3D]
        q, k, v = F.silu(mixed).chunk(3, dim=-1)
        q, k, v = (split_heads(t, self.num_heads) for t in (q, k, v))
        return F.normalize(q, dim=-1), F.normalize(k, dim=-1), v, new_conv

    def _gate_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Gate logits ``[B, H, T, 3]`` (eta, theta, alpha) of ``x [B, T, D]``."""
        return rearrange(self.gates(x), "b t (g h) -> b h t g", g=3)

    def _gate_values(self, z: torch.Tensor, n_full: int, dtype: torch.dtype):
        """Per-token ``theta`` ``[B, H, T]`` and per-chunk ``log_eta``, ``log_keep`` ``[B, H, N]``
        (``N = n_full`` complete chunks, from the mean logit of their tokens) of logits ``z``
        ``[B, H, T, 3]`` whose first token starts a chunk."""
        done = z[:, :, : n_full * self.chunk_size]
        chunk_z = rearrange(done, "b h (n c) g -> b h n c g", c=self.chunk_size).mean(dim=3)  # [B, H, N, 3]
        theta = torch.exp(self.log_theta_max).to(dtype)[:, None] * torch.sigmoid(z[..., 1])
        # log eta = logsigmoid(z); log(1 - alpha) = logsigmoid(-z): finite even when saturated.
        return theta, F.logsigmoid(chunk_z[..., 0]), F.logsigmoid(-chunk_z[..., 2])

    def write_gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The gates ``forward(x)`` applies, ``{name: [B, T, H]}`` (see ``gate_units``)."""
        check_input(x, self.d_model, self.layer_name)
        t_len = x.shape[1]
        theta, log_eta, log_keep = self._gate_values(self._gate_logits(x), t_len // self.chunk_size, x.dtype)

        def per_token(per_chunk: torch.Tensor) -> torch.Tensor:  # [B, H, N] -> [B, T, H]
            tokens = per_chunk.repeat_interleave(self.chunk_size, dim=2)  # [B, H, N * C]
            unfinished = tokens.new_full((*tokens.shape[:2], t_len - tokens.shape[2]), float("nan"))
            return rearrange(torch.cat((tokens, unfinished), dim=2), "b h t -> b t h")

        return {
            "step_size": rearrange(theta, "b h t -> b t h"),
            "momentum": per_token(torch.exp(log_eta)),
            "decay": per_token(-torch.expm1(log_keep)),
        }

    def forward(self, x: torch.Tensor, state: NeuralMemoryState | None = None):
        check_input(x, self.d_model, self.layer_name)
        batch, t_new, _ = x.shape
        if state is None:
            state = self.init_state(batch, x.device, x.dtype)
        size, count = self.chunk_size, read_counter(state.count)
        q, k, v, conv = self.project(x, state.conv)
        z = self._gate_logits(x)  # [B, H, T, 3]
        if count:  # the unfinished chunk's tokens go in front: the op starts at a chunk boundary
            k = torch.cat((state.pending_k[:, :, :count], k), dim=2)  # [B, H, P + T, Dh]
            v = torch.cat((state.pending_v[:, :, :count], v), dim=2)
            z = torch.cat((state.pending_z[:, :, :count], z), dim=2)  # [B, H, P + T, 3]
            q = torch.cat((q.new_zeros(batch, self.num_heads, count, self.head_dim), q), dim=2)
        n_full = (count + t_new) // size
        theta, log_eta, log_keep = self._gate_values(z, n_full, x.dtype)
        initial = (MLPMemory(state.w1, state.w2), MLPMemory(state.s1, state.s2))
        gamma = self.mem_gamma.to(x.dtype).view(self.num_heads, 1, self.head_dim)
        read, (mem, momentum) = chunk_neural_memory(q, k, v, theta, log_eta, log_keep, gamma, size, initial)
        read = F.rms_norm(read[:, :, count:] if count else read, (self.head_dim,))  # [B, H, T, Dh]
        read = read * self.norm_weight.view(self.num_heads, 1, self.head_dim)
        y = self.out(merge_heads(read) * torch.sigmoid(self.out_gate(x)))
        tail = n_full * size  # rows of the new unfinished chunk start here
        new_state = NeuralMemoryState(
            w1=mem.w1,
            w2=mem.w2,
            s1=momentum.w1,
            s2=momentum.w2,
            conv=conv,
            pending_k=pad_to_length(k[:, :, tail:], size),
            pending_v=pad_to_length(v[:, :, tail:], size),
            pending_z=pad_to_length(z[:, :, tail:], size),
            count=batch_counter(count + t_new - tail, batch, x.device),
        )
        return y, new_state
