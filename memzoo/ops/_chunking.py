"""Helpers shared by the chunked fast-weight ops: argument checks, padding, chunk masks.

Shape legend: B batch, H heads, T time, N number of chunks, C chunk size, D feature dim.
A chunked op pads T up to N * C with tokens that leave the state unchanged (zero keys and
values, zero write strength, no decay), splits time into ``[B, H, N, C, ...]`` and cuts the
padding off the output again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from memzoo.errors import ConfigError


def check_chunk_size(chunk_size: int) -> None:
    """Raise a ``ConfigError`` unless ``chunk_size`` is a positive integer."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a positive integer, got {chunk_size!r}")


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[int, int, int, int, int]:
    """Check ``q, k: [B, H, T, Dk]`` and ``v: [B, H, T, Dv]``; return ``(B, H, T, Dk, Dv)``."""
    if q.dim() != 4 or k.shape != q.shape or v.dim() != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(
            "expected q, k: [B, H, T, Dk] and v: [B, H, T, Dv], got "
            f"q {list(q.shape)}, k {list(k.shape)}, v {list(v.shape)}"
        )
    batch, heads, seq_len, d_k = q.shape
    return batch, heads, seq_len, d_k, v.shape[-1]


def check_per_token(name: str, x: torch.Tensor, q: torch.Tensor) -> None:
    """Check that a per-token scalar (gate, write strength) is ``[B, H, T]`` like ``q``."""
    if x.shape != q.shape[:3]:
        raise ValueError(f"{name}: expected shape {list(q.shape[:3])} ([B, H, T]), got {list(x.shape)}")


def zero_state(q: torch.Tensor, d_k: int, d_v: int) -> torch.Tensor:
    """A zero matrix memory ``[B, H, Dk, Dv]`` on ``q``'s device and dtype."""
    return q.new_zeros(q.shape[0], q.shape[1], d_k, d_v)


def pad_time(x: torch.Tensor, chunk_size: int, value: float = 0.0) -> torch.Tensor:
    """Pad dim 2 (time) of ``[B, H, T]`` or ``[B, H, T, D]`` up to a multiple of chunk_size."""
    pad = (-x.shape[2]) % chunk_size
    if pad == 0:
        return x
    widths = (0, pad) if x.dim() == 3 else (0, 0, 0, pad)
    return F.pad(x, widths, value=value)


def to_chunks(x: torch.Tensor, chunk_size: int, value: float = 0.0) -> torch.Tensor:
    """``[B, H, T, D] -> [B, H, N, C, D]`` (or ``[B, H, T] -> [B, H, N, C]``), padded."""
    x = pad_time(x, chunk_size, value)
    if x.dim() == 3:
        return rearrange(x, "b h (n c) -> b h n c", c=chunk_size)
    return rearrange(x, "b h (n c) d -> b h n c d", c=chunk_size)


def from_chunks(x: torch.Tensor, seq_len: int) -> torch.Tensor:
    """``[B, H, N, C, D] -> [B, H, T, D]``, dropping the padding."""
    return rearrange(x, "b h n c d -> b h (n c) d")[:, :, :seq_len]


def causal_mask(chunk_size: int, device, strict: bool = False) -> torch.Tensor:
    """Boolean ``[C, C]`` mask of pairs (i, j) with j <= i (j < i when ``strict``)."""
    ones = torch.ones(chunk_size, chunk_size, dtype=torch.bool, device=device)
    return torch.tril(ones, diagonal=-1 if strict else 0)
