"""mLSTM (xLSTM, Beck et al. 2024): a gated matrix memory with an exponential input gate.

Per head: ``C_t = f_t C_{t-1} + i_t k_t v_t^T``, ``n_t = f_t n_{t-1} + i_t k_t`` and
``h_t = C_t^T q_t / max(|n_t . q_t|, 1)``, computed in the stabilised form of
``memzoo.ops.mlstm`` (state C, n and the log-scale stabiliser m).

The layer follows the xLSTM mLSTM block, kept lean:

- q and k come from a short causal depthwise conv + SiLU of the input, v from the input
  directly; k is scaled by ``Dh ** -0.5``;
- the input-gate pre-activation ``i_t`` and forget gate ``f_t = sigmoid(.)`` are per head
  from the input; the forget-gate bias starts in [3, 6] so the memory starts long-lived;
- a per-head LayerNorm on ``h``, the output gate ``sigmoid(W_o x_t)``, the output projection.

The conv's last ``conv_size - 1`` inputs are part of the state. T == 1 uses the step form.

Write gates (``write_gates(x)``, ``[B, T, H]`` each, from the input, computed by the
``_gates`` that ``forward`` calls): ``log_input_gate`` ``i_t`` (the pre-activation the op
takes), ``input_gate`` ``exp(i_t)`` and ``forget_gate`` ``f_t = sigmoid(.)``: the gates of the
recurrence ``C_t = f_t C_{t-1} + exp(i_t) k_t v_t^T`` as the model defines it. The op's
stabiliser ``m_t`` is not part of them: it stores ``C_t exp(-m_t)`` (so the stored state is
written with ``exp(i_t - m_t)`` and kept by ``f_t exp(m_{t-1} - m_t)``), a rescaling of the
state that leaves the read-out ``h_t`` unchanged; it changes no choice of what to write.

Shape legend: B batch, T time, D d_model, H num_heads, Dh = D / H, K conv_size.
State: ``MLSTMLayerState(C [B, H, Dh, Dh], n [B, H, Dh], m [B, H], conv [B, K - 1, D])``.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from memzoo.layers._checks import check_heads, check_int
from memzoo.layers._fast_weight import (
    ShortConv,
    check_algorithm,
    parallel_form,
)
from memzoo.layers.base import MemoryLayer, check_input
from memzoo.layers.registry import register
from memzoo.ops.mlstm import MLSTMState, chunk_mlstm, mlstm_step, naive_mlstm


class MLSTMLayerState(NamedTuple):
    C: torch.Tensor  # [B, H, Dh, Dh] stabilised matrix memory (key dim x value dim)
    n: torch.Tensor  # [B, H, Dh] stabilised normaliser
    m: torch.Tensor  # [B, H] stabiliser (log scale of C and n)
    conv: torch.Tensor  # [B, K - 1, D] last inputs of the q/k short convolution


@register("mlstm")
class MLSTM(MemoryLayer):
    """mLSTM layer.

    Args:
        d_model: model width D.
        num_heads: H, must divide d_model (default 4).
        chunk_size: tokens per chunk of the parallel form (default 64).
        algorithm: ``"chunked"`` (default) or ``"naive"`` (the token-by-token reference).
        conv_size: width of the causal conv feeding q and k (default 4).

    ``forward(x [B, T, D], state) -> (y [B, T, D], MLSTMLayerState)``.
    """

    kind = "short"
    family = "fast-weight"
    state_growth = "O(1)"
    description = "mLSTM (xLSTM): matrix memory with exponential input gate, forget gate, normaliser"
    gate_units: ClassVar[dict[str, str]] = {
        "input_gate": "exp(i_t) > 0, the weight of the write k_t v_t^T (unstabilised, unbounded)",
        "log_input_gate": "i_t, the input gate's pre-activation (its log)",
        "forget_gate": "f_t = sigmoid(.) in (0, 1), the factor the memory is kept by",
    }

    def __init__(
        self,
        d_model: int,
        *,
        num_heads: int = 4,
        chunk_size: int = 64,
        conv_size: int = 4,
        algorithm: str = "chunked",
    ):
        super().__init__(d_model)
        self.algorithm = check_algorithm(algorithm)
        self.head_dim = check_heads(self.layer_name, d_model, num_heads)
        check_int(self.layer_name, "chunk_size", chunk_size)
        check_int(self.layer_name, "conv_size", conv_size)
        self.num_heads = num_heads
        self.chunk_size = chunk_size
        self.conv_size = conv_size
        self.conv = ShortConv(d_model, conv_size)
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.gate_proj = nn.Linear(d_model, 2 * num_heads)  # input and forget pre-activations
        with torch.no_grad():
            self.gate_proj.weight.mul_(0.1)  # gates start close to their biases
            self.gate_proj.bias[:num_heads].zero_()
            self.gate_proj.bias[num_heads:].copy_(torch.linspace(3.0, 6.0, num_heads))
        self.o_gate = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(self.head_dim, bias=False)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)

    def init_state(self, batch_size: int, device=None, dtype=None) -> MLSTMLayerState:
        device, dtype = self._param_device_dtype(device, dtype)
        heads, dh = self.num_heads, self.head_dim
        return MLSTMLayerState(
            torch.zeros(batch_size, heads, dh, dh, device=device, dtype=dtype),
            torch.zeros(batch_size, heads, dh, device=device, dtype=dtype),
            torch.zeros(batch_size, heads, device=device, dtype=dtype),
            self.conv.init_cache(batch_size, device, dtype),
        )

    def state_size(self, seq_len: int) -> int:
        heads, dh = self.num_heads, self.head_dim
        return 4 * (heads * dh * dh + heads * dh + heads + (self.conv_size - 1) * self.d_model)

    def _gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Input-gate pre-activation ``i`` and log forget gate ``log_f``, ``[B, H, T]`` each."""
        gates = rearrange(self.gate_proj(x), "b t (two h) -> two b h t", two=2)  # [2, B, H, T]
        return gates[0], F.logsigmoid(gates[1])

    def write_gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The gates ``forward(x)`` applies, ``{name: [B, T, H]}`` (see ``gate_units``)."""
        check_input(x, self.d_model, self.layer_name)
        i, log_f = (rearrange(g, "b h t -> b t h") for g in self._gates(x))
        return {"input_gate": torch.exp(i), "log_input_gate": i, "forget_gate": torch.exp(log_f)}

    def forward(self, x: torch.Tensor, state: MLSTMLayerState | None = None):
        check_input(x, self.d_model, self.layer_name)
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        heads = self.num_heads
        conv_out, conv_cache = self.conv(x, state.conv)
        conv_out = F.silu(conv_out)  # [B, T, D]
        q = rearrange(self.q_proj(conv_out), "b t (h d) -> b h t d", h=heads)  # [B, H, T, Dh]
        k = rearrange(self.k_proj(conv_out), "b t (h d) -> b h t d", h=heads) * self.head_dim**-0.5
        v = rearrange(self.v_proj(x), "b t (h d) -> b h t d", h=heads)
        i, log_f = self._gates(x)  # [B, H, T] each
        memory = MLSTMState(state.C, state.n, state.m)
        if x.shape[1] == 1:
            step_in = (q[:, :, 0], k[:, :, 0], v[:, :, 0], i[:, :, 0], log_f[:, :, 0])
            h, memory = mlstm_step(*step_in, memory)
            h = h.unsqueeze(2)  # [B, H, 1, Dh]
        else:
            h, memory = parallel_form(
                self.algorithm,
                chunk_mlstm,
                naive_mlstm,
                q,
                k,
                v,
                i,
                log_f,
                initial_state=memory,
                chunk_size=self.chunk_size,
            )
        h = rearrange(self.norm(h), "b h t d -> b t (h d)")
        y = self.o_proj(h * torch.sigmoid(self.o_gate(x)))
        return y, MLSTMLayerState(*memory, conv_cache)
