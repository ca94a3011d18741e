"""Building blocks shared by the fast-weight layers (linear attention, DeltaNet, mLSTM).

Not a layer family itself (the leading underscore keeps the registry from importing it as
one). Shape legend: B batch, T time, D channels, K conv_size.
"""

from __future__ import annotations

import torch
from torch import nn

from memzoo.errors import ConfigError
from memzoo.layers._checks import check_int

ALGORITHMS = ("chunked", "naive")


def check_algorithm(value: str) -> str:
    """``algorithm`` picks the parallel form: ``"chunked"`` (default, fast) or ``"naive"`` (the
    op's token-by-token reference recurrence; same results, for checking and benchmarks)."""
    if value not in ALGORITHMS:
        raise ConfigError(f"algorithm must be one of {', '.join(ALGORITHMS)}; got {value!r}")
    return value


def parallel_form(algorithm: str, chunk_fn, naive_fn, *inputs, initial_state, chunk_size: int):
    """Run a multi-token input through the chunked op or its naive recurrence.

    Layers call it by this module-level name, so ``memzoo speed`` can observe the call (and the
    inputs the layer hands the op) by patching the name in the layer's module."""
    chunk_size = min(chunk_size, inputs[0].shape[2])
    if algorithm == "naive":
        return naive_fn(*inputs, initial_state)
    return chunk_fn(*inputs, initial_state, chunk_size=chunk_size)


class ShortConv(nn.Module):
    """Causal depthwise 1-D convolution whose last ``K - 1`` inputs are carried as state.

    ``forward(x [B, T, D], cache [B, K - 1, D]) -> (y [B, T, D], new_cache [B, K - 1, D])``.
    The cache holds the inputs just before ``x`` (zeros at the start of a sequence), so
    running a sequence whole or in pieces gives the same output. No bias, no activation:
    the layer applies its own.
    """

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        check_int(None, "conv_size", kernel_size)
        self.channels = channels
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size))
        # Same scale as nn.Conv1d's default init for a depthwise kernel (fan_in = K).
        nn.init.uniform_(self.weight, -(kernel_size**-0.5), kernel_size**-0.5)

    def init_cache(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        return torch.zeros(batch_size, self.kernel_size - 1, self.channels, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor, cache: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        full = torch.cat([cache, x], dim=1)  # [B, K - 1 + T, D]
        seq_len = x.shape[1]
        taps = self.weight[:, 0, :]  # [D, K]
        # A sum of K shifted products rather than F.conv1d(groups=D): on CPU the depthwise
        # convolution's backward was ~2.5x slower than these K elementwise passes (measured
        # at B=8, T=4096, D=768, K=4), and it dominated the fast-weight layers' backward.
        y = full[:, :seq_len] * taps[:, 0]
        for i in range(1, self.kernel_size):
            y = y + full[:, i : i + seq_len] * taps[:, i]
        new_cache = full[:, full.shape[1] - (self.kernel_size - 1) :]
        return y, new_cache


def l2_normalize(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Unit vectors along the last dim; ``eps`` keeps an all-zero vector at zero."""
    return x / x.norm(dim=-1, keepdim=True).clamp_min(eps)
