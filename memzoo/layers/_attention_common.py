"""Pieces shared by the attention-family layers: option checks, rotary positions, masks.

Shape legend: B batch, H heads, T time, Tq queries, Tk keys, D d_model, Dh = D / H.

Masks are boolean with ``True`` = "may attend" (the convention of
``torch.nn.functional.scaled_dot_product_attention``).
"""

from __future__ import annotations

import torch

from memzoo.errors import ConfigError

SCORES = ("dot", "cosine", "additive")
ROPE_BASE = 10000.0


def check_score(layer: str, score) -> str:
    if score not in SCORES:
        raise ConfigError(f"{layer}: score must be one of {list(SCORES)}, got {score!r}")
    return score


def check_rope(layer: str, rope, head_dim: int) -> bool:
    """RoPE rotates pairs of features, so it needs an even head width."""
    if not isinstance(rope, bool):
        raise ConfigError(f"{layer}: rope must be true or false, got {rope!r}")
    if rope and head_dim % 2:
        raise ConfigError(
            f"{layer}: rope=True needs an even head width d_model/num_heads, got {head_dim}; "
            "pick num_heads so that d_model/num_heads is even, or set rope=False"
        )
    return rope


def rope_tables(positions: torch.Tensor, head_dim: int, dtype: torch.dtype) -> torch.Tensor:
    """The rotary position embedding's rotations for integer ``positions``.

    Args:
        positions: ``[T]`` (shared by the batch) or ``[B, T]`` absolute token positions.
        head_dim: Dh, even.
        dtype: the dtype of the tensors to rotate (float64 gets complex128 tables, every
            other dtype complex64).
    Returns:
        ``[1, 1, T, Dh/2]`` or ``[B, 1, T, Dh/2]`` complex unit numbers
        ``exp(i * pos * base^(-j / (Dh/2)))`` (broadcast over heads): feature pair j
        (features ``2j, 2j+1``) of a token at ``pos`` is rotated by that angle.
    """
    # Angles in float64 where available: a stream may run for millions of tokens, and
    # pos * freq in fp32 loses the low bits of the angle there. The table is tiny.
    work = torch.float32 if positions.device.type == "mps" else torch.float64
    half = head_dim // 2
    inv_freq = ROPE_BASE ** (-torch.arange(half, device=positions.device, dtype=work) / half)
    angles = positions.to(work).unsqueeze(-1) * inv_freq  # [..., T, Dh/2]
    rotation = torch.polar(torch.ones_like(angles), angles)
    lead = (None, None) if angles.dim() == 2 else (slice(None), None)  # -> [1|B, 1, T, Dh/2]
    return rotation[lead].to(torch.complex128 if dtype == torch.float64 else torch.complex64)


# Tables for positions 0..N-1, keyed by (N, Dh, device, dtype). Building one costs about
# ten tiny kernels, which on a GPU can rival attention itself at small sizes; a cached
# table is sliced for free. Module-level, so forward never changes an nn.Module.
_TABLE_CACHE: dict[tuple, torch.Tensor] = {}
_TABLE_CACHE_MAX = 32
_TABLE_CACHE_MAX_POSITIONS = 1 << 16


def shared_rope_tables(start: int, length: int, head_dim: int, device, dtype: torch.dtype) -> torch.Tensor:
    """:func:`rope_tables` of positions ``start .. start+length-1``, ``[1, 1, T, Dh/2]``.

    Served from a cache of tables whose size is a power of two, so values are identical
    to the uncached ones (the angles are computed element by element).
    """
    end = start + length
    if end > _TABLE_CACHE_MAX_POSITIONS:  # a long stream: don't hold a huge table
        positions = torch.arange(start, end, device=device)
        return rope_tables(positions, head_dim, dtype)
    n = max(64, 1 << (end - 1).bit_length())
    key = (n, head_dim, torch.device(device), dtype)
    table = _TABLE_CACHE.get(key)
    if table is None:
        # Never build the cached table as an inference tensor: a later training step
        # could not save it for backward.
        with torch.inference_mode(False), torch.no_grad():
            table = rope_tables(torch.arange(n, device=device), head_dim, dtype)
        if len(_TABLE_CACHE) >= _TABLE_CACHE_MAX:
            _TABLE_CACHE.clear()
        _TABLE_CACHE[key] = table
    return table[:, :, start : start + length]


def apply_rope(x: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotate feature pairs ``(x_2j, x_2j+1)`` of ``x`` ``[..., T, Dh]`` by ``rotation``.

    ``rotation`` is a :func:`rope_tables` table broadcastable to ``[..., T, Dh/2]``. A
    rotation keeps norms, so the dot product of a rotated query at position m and a rotated
    key at position n depends on the positions only through m - n.
    """
    pairs = x.unflatten(-1, (x.shape[-1] // 2, 2))  # [..., T, Dh/2, 2]
    if x.dtype in (torch.float32, torch.float64) and x.device.type != "mps":
        # One complex multiply: a single elementwise pass (forward and backward), about
        # 1.5x faster end to end than the three real passes of rotate-half on CPU.
        if pairs.stride(-1) != 1:
            pairs = pairs.contiguous()
        return torch.view_as_real(torch.view_as_complex(pairs) * rotation).flatten(-2)
    # Half precision (autocast) has no complex kernels: the same rotation in real arithmetic.
    cos, sin = rotation.real.to(x.dtype), rotation.imag.to(x.dtype)
    even, odd = pairs.unbind(-1)
    return torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1).flatten(-2)


def causal_mask(t_q: int, t_k: int, device=None) -> torch.Tensor:
    """``[Tq, Tk]`` causal mask aligned to the lower right.

    The Tq queries are the last Tq of the Tk keys' positions: query i sees keys
    ``j <= i + (Tk - Tq)``, i.e. every cached key plus the causal part of its own chunk.
    (``is_causal=True`` in SDPA aligns top-left when Tq != Tk, which would hide the cache.)
    """
    i = torch.arange(t_q, device=device).unsqueeze(1)  # [Tq, 1]
    j = torch.arange(t_k, device=device).unsqueeze(0)  # [1, Tk]
    return j <= i + (t_k - t_q)


def band_mask(t_q: int, t_k: int, window: int, device=None) -> torch.Tensor:
    """``[Tq, Tk]`` causal mask that also hides keys ``window`` or more steps back.

    Alignment as :func:`causal_mask`: query i sits at key index ``i + Tk - Tq``, and sees
    key j when ``0 <= (i + Tk - Tq) - j < window``.
    """
    i = torch.arange(t_q, device=device).unsqueeze(1)  # [Tq, 1]
    j = torch.arange(t_k, device=device).unsqueeze(0)  # [1, Tk]
    lag = i + (t_k - t_q) - j  # how many steps key j lies behind query i
    return (lag >= 0) & (lag < window)
