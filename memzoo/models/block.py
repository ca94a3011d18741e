"""A residual pre-norm block: memory layer + MLP.

Shape legend: B batch, T time, D d_model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from memzoo.layers.base import MemoryLayer


class MemoryBlock(nn.Module):
    """``x -> x + layer(norm(x)) -> x + mlp(norm(x))``; the layer's state passes through.

    ``mlp_ratio=0`` drops the MLP (a pure memory-layer stack, e.g. a classic LSTM).
    """

    def __init__(self, layer: MemoryLayer, mlp_ratio: int = 4):
        super().__init__()
        d_model = layer.d_model
        self.layer = layer
        self.norm1 = nn.LayerNorm(d_model)
        self.mlp = None
        if mlp_ratio > 0:
            self.norm2 = nn.LayerNorm(d_model)
            self.mlp = nn.Sequential(
                nn.Linear(d_model, mlp_ratio * d_model),
                nn.GELU(),
                nn.Linear(mlp_ratio * d_model, d_model),
            )

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        y, state = self.layer(self.norm1(x), state)  # [B, T, D]
        x = x + y
        if self.mlp is not None:
            x = x + self.mlp(self.norm2(x))
        return x, state
