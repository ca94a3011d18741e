"""Reference implementations that ``memzoo speed`` measures memzoo's layers against.

Each reference does the same job with the plainest well-kept code, so a ratio
``layer tokens/s ÷ reference tokens/s`` says what memzoo's layer costs on top:

- ``attention`` vs bare ``scaled_dot_product_attention`` with the same projections;
- ``lstm`` / ``gru`` / ``rnn`` vs the bare ``torch.nn`` module;
- a fast-weight layer vs the same layer running its op's naive token-by-token recurrence
  (layers that take ``algorithm="naive"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from memzoo import layers as layer_registry


class SDPAReference(nn.Module):
    """qkv projection -> causal SDPA -> output projection; ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, state=None):
        q, k, v = rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.num_heads)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H, T, Dh]
        return self.out(rearrange(y, "b h t d -> b t (h d)")), None


class TorchRecurrentReference(nn.Module):
    """A bare ``torch.nn.LSTM/GRU/RNN`` (batch first, hidden = d_model)."""

    def __init__(self, cls: type[nn.Module], d_model: int):
        super().__init__()
        self.rnn = cls(d_model, d_model, batch_first=True)

    def forward(self, x: torch.Tensor, state=None):
        return self.rnn(x)


_TORCH_RECURRENT = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def reference_for(name: str, d_model: int, options: dict) -> tuple[str, nn.Module] | None:
    """``(label, module)`` to compare layer ``name`` with, or None if it has no reference."""
    if name == "attention":
        return "sdpa", SDPAReference(d_model, options.get("num_heads", 4))
    if name in _TORCH_RECURRENT:
        cls = _TORCH_RECURRENT[name]
        return f"torch.nn.{cls.__name__}", TorchRecurrentReference(cls, d_model)
    if "algorithm" in layer_registry.accepted_kwargs(name):
        return "naive recurrence", layer_registry.build(name, d_model, **{**options, "algorithm": "naive"})
    return None
