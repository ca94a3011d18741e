"""Helpers of the optional inspection views (``write_gates``, ``attention_weights``; see
``base.py``) that would otherwise grow the layer files: a top-k softmax spread back over
positions, and the step form of ``torch.nn.LSTM`` / ``torch.nn.GRU`` that shows their gates.

Not a layer family (the leading underscore keeps the registry from importing it as one).
Shape legend: B batch, H heads, T time (queries), S positions (keys), K top_k, D d_model,
L num_layers of a recurrent stack, G = 3 or 4 gate blocks of D.
"""

from __future__ import annotations

import torch
from torch import nn


def topk_softmax(scores: torch.Tensor, allowed: torch.Tensor, top_k: int) -> torch.Tensor:
    """Softmax over each row's ``top_k`` best allowed scores, spread back over the row.

    Args:
        scores: ``[B, H, T, S]``.
        allowed: ``[T, S]`` bool, the positions a query may pick from.
        top_k: K.
    Returns:
        ``[B, H, T, S]`` weights: 0 off the picked positions; a row that may pick nothing is all 0
        (its others sum to 1), as ``memzoo.ops.kv_ring.ring_retrieve`` reads.
    """
    masked = scores.masked_fill(~allowed, float("-inf"))
    best, index = masked.topk(min(top_k, scores.shape[-1]), dim=-1)  # [B, H, T, K]
    found = best > float("-inf")
    peak = best.amax(dim=-1, keepdim=True).masked_fill(~found.any(dim=-1, keepdim=True), 0.0)
    weights = torch.exp(best - peak) * found
    weights = weights / weights.sum(dim=-1, keepdim=True).clamp_min(1e-30)
    # scatter_add: an index repeated by a row with fewer than K candidates adds 0, overwrites nothing
    return torch.zeros_like(scores).scatter_add(-1, index, weights)


def _layer_weights(rnn: nn.RNNBase, layer: int):
    """``(W_ih [G D, D_in], W_hh [G D, D], b_ih [G D], b_hh [G D])`` of layer ``layer``."""
    names = ("weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l")
    return tuple(getattr(rnn, f"{name}{layer}") for name in names)


def lstm_steps(rnn: nn.LSTM, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``torch.nn.LSTM``'s recurrence token by token from a zero state, with its gates.

    ``x [B, T, D]`` -> ``({"input_gate", "forget_gate": [B, T, L D]}, y [B, T, D])``: the gates
    of every layer side by side (layer 0's units first), ``y`` the last layer's hidden
    sequence (what the module returns). Gate order and formulas are torch's:
    ``i, f, g, o = chunk(W_ih x + b_ih + W_hh h + b_hh)``, ``c = sigmoid(f) c + sigmoid(i) tanh(g)``.
    """
    batch, t_len, _ = x.shape
    inputs, gates = x, {"input_gate": [], "forget_gate": []}
    for layer in range(rnn.num_layers):
        w_ih, w_hh, b_ih, b_hh = _layer_weights(rnn, layer)
        from_x = inputs @ w_ih.T + b_ih  # [B, T, 4 D], all tokens at once
        h = c = x.new_zeros(batch, rnn.hidden_size)
        hs, i_gates, f_gates = [], [], []
        for t in range(t_len):  # the step form: each gate reads h_{t-1}
            i, f, g, o = (from_x[:, t] + h @ w_hh.T + b_hh).chunk(4, dim=-1)
            i, f = torch.sigmoid(i), torch.sigmoid(f)
            c = f * c + i * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            hs.append(h)
            i_gates.append(i)
            f_gates.append(f)
        inputs = torch.stack(hs, dim=1)  # [B, T, D], the next layer's input
        gates["input_gate"].append(torch.stack(i_gates, dim=1))
        gates["forget_gate"].append(torch.stack(f_gates, dim=1))
    return {name: torch.cat(parts, dim=-1) for name, parts in gates.items()}, inputs


def gru_steps(rnn: nn.GRU, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """``torch.nn.GRU``'s recurrence token by token from a zero state, with its gates.

    ``x [B, T, D]`` -> ``({"update_gate", "reset_gate": [B, T, L D]}, y [B, T, D])`` as
    :func:`lstm_steps`. torch's formulas: ``r = sigmoid(.)``, ``z = sigmoid(.)``,
    ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``, ``h = (1 - z) n + z h``: the update gate z
    is the share of the old state kept, ``1 - z`` the share written.
    """
    batch, t_len, _ = x.shape
    inputs, gates = x, {"update_gate": [], "reset_gate": []}
    for layer in range(rnn.num_layers):
        w_ih, w_hh, b_ih, b_hh = _layer_weights(rnn, layer)
        from_x = inputs @ w_ih.T + b_ih  # [B, T, 3 D], all tokens at once
        h = x.new_zeros(batch, rnn.hidden_size)
        hs, z_gates, r_gates = [], [], []
        for t in range(t_len):  # the step form: each gate reads h_{t-1}
            x_r, x_z, x_n = from_x[:, t].chunk(3, dim=-1)
            h_r, h_z, h_n = (h @ w_hh.T + b_hh).chunk(3, dim=-1)
            r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
            h = (1 - z) * torch.tanh(x_n + r * h_n) + z * h
            hs.append(h)
            z_gates.append(z)
            r_gates.append(r)
        inputs = torch.stack(hs, dim=1)
        gates["update_gate"].append(torch.stack(z_gates, dim=1))
        gates["reset_gate"].append(torch.stack(r_gates, dim=1))
    return {name: torch.cat(parts, dim=-1) for name, parts in gates.items()}, inputs
