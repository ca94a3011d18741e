"""Recurrent short-term memory: Elman RNN, LSTM and GRU.

Shape legend: B batch, T time, D d_model, L num_layers of the recurrent stack.
The state is batch first (``[B, L, D]``); torch's own ``[L, B, D]`` stays inside.
``torch.nn.LSTM`` / ``torch.nn.GRU`` use cuDNN on a GPU.

Write gates (see ``base.py``): LSTM and GRU show theirs, ``[B, T, L D]`` (one column per unit,
layer 0 first), by running torch's recurrence once token by token from a zero state with the
module's own weights (the gates read ``h_{t-1}``, so this is the step form's loop); the
recurrence is checked to reproduce the module's output. The Elman RNN has no gate.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

import torch
from torch import nn

from memzoo.layers._views import gru_steps, lstm_steps
from memzoo.layers.base import MemoryLayer, check_input
from memzoo.layers.registry import register


class HiddenState(NamedTuple):
    h: torch.Tensor  # [B, L, D]


class LSTMState(NamedTuple):
    h: torch.Tensor  # [B, L, D]
    c: torch.Tensor  # [B, L, D]


class _TorchRecurrent(MemoryLayer):
    """Wraps a torch recurrent module whose hidden size is d_model."""

    family = "recurrent"
    state_growth = "O(1)"
    _num_state_tensors = 1

    def __init__(self, d_model: int, *, num_layers: int = 1):
        super().__init__(d_model)
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = num_layers
        self.rnn = self._make_rnn(d_model, num_layers)

    def _make_rnn(self, d_model: int, num_layers: int) -> nn.Module:
        raise NotImplementedError  # each subclass picks its torch module

    def init_state(self, batch_size: int, device=None, dtype=None):
        device, dtype = self._param_device_dtype(device, dtype)
        zeros = [
            torch.zeros(batch_size, self.num_layers, self.d_model, device=device, dtype=dtype)
            for _ in range(self._num_state_tensors)
        ]
        return self._state_type(*zeros)

    def state_size(self, seq_len: int) -> int:
        return 4 * self._num_state_tensors * self.num_layers * self.d_model

    def forward(self, x: torch.Tensor, state=None):
        check_input(x, self.d_model, self.layer_name)
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        torch_state = tuple(s.transpose(0, 1).contiguous() for s in state)  # [L, B, D]
        if len(torch_state) == 1:
            torch_state = torch_state[0]
        y, new = self.rnn(x, torch_state)
        new = (new,) if isinstance(new, torch.Tensor) else new
        return y, self._state_type(*(s.transpose(0, 1) for s in new))


@register("rnn")
class ElmanRNN(_TorchRecurrent):
    """Elman RNN: h_t = tanh(W x_t + U h_{t-1} + b). State: h ``[B, L, D]``."""

    description = "Elman RNN, h_t = tanh(W x_t + U h_{t-1} + b)"
    _state_type = HiddenState

    def _make_rnn(self, d_model, num_layers):
        return nn.RNN(d_model, d_model, num_layers, nonlinearity="tanh", batch_first=True)


@register("lstm")
class LSTM(_TorchRecurrent):
    """LSTM (Hochreiter & Schmidhuber 1997) through ``torch.nn.LSTM``. State: h, c ``[B, L, D]``."""

    description = "LSTM: gated cell state c_t and hidden state h_t (torch.nn.LSTM)"
    _state_type = LSTMState
    _num_state_tensors = 2
    gate_units: ClassVar[dict[str, str]] = {
        "input_gate": "i_t = sigmoid(.) in (0, 1) per unit, the share of the candidate tanh(g_t) written",
        "forget_gate": "f_t = sigmoid(.) in (0, 1) per unit, the share of c_{t-1} kept",
    }

    def _make_rnn(self, d_model, num_layers):
        return nn.LSTM(d_model, d_model, num_layers, batch_first=True)

    def write_gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"input_gate", "forget_gate": [B, T, L D]}`` of a fresh sequence ``x [B, T, D]``."""
        check_input(x, self.d_model, self.layer_name)
        return lstm_steps(self.rnn, x)[0]


@register("gru")
class GRU(_TorchRecurrent):
    """GRU (Cho et al. 2014) through ``torch.nn.GRU``. State: h ``[B, L, D]``."""

    description = "GRU: update/reset-gated hidden state (torch.nn.GRU)"
    _state_type = HiddenState

    gate_units: ClassVar[dict[str, str]] = {
        "update_gate": "z_t = sigmoid(.) in (0, 1) per unit, the share of h_{t-1} kept (1 - z_t is written)",
        "reset_gate": "r_t = sigmoid(.) in (0, 1) per unit, the share of W_hn h_{t-1} the candidate reads",
    }

    def _make_rnn(self, d_model, num_layers):
        return nn.GRU(d_model, d_model, num_layers, batch_first=True)

    def write_gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"update_gate", "reset_gate": [B, T, L D]}`` of a fresh sequence ``x [B, T, D]``."""
        check_input(x, self.d_model, self.layer_name)
        return gru_steps(self.rnn, x)[0]
