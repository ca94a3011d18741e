"""A growing key/value cache with amortised O(1) appends and no mutation anyone can see.

Shape legend: B batch, H heads, L tokens cached, T new tokens, C capacity (C >= L), Dh head width.

Concatenating a cache on every decode step copies all of it, so decoding N tokens costs
O(N^2) copies. Here the cached keys/values a state holds are *views* ``buf[:, :, :L]`` of a
larger buffer ``[B, H, C, Dh]`` shared by the states appended from one another, and a
:class:`KVBuffer` handle records the buffer's high-water mark: how many positions some
state has already written. An append of T tokens to a state of length L

- writes in place, into positions ``L .. L+T-1``, when the state's tensors are views of
  the handle's buffer, the high-water mark is exactly L (no other state has written past
  L, so nobody can see those positions) and ``L + T <= C``;
- otherwise copies the L cached tokens and the T new ones into a fresh buffer of capacity
  ``max(MIN_CAPACITY, 2 (L + T))`` (the copy path; the doubling makes appends amortised
  O(1)).

A state's tensors only ever show positions ``< L``, and positions ``< L`` are never written
again, so no state a caller holds changes: two continuations of one state (beam search)
are both right — the first writes in place, the second copies. After a transformation of
the state (``map_state``: ``index_select``, ``.to``, ``clone``) the tensors are no longer
views of the handle's buffer; the check sees that and the append copies. ``detach`` keeps
the same storage and stays on the in-place path.

**Cost.** A chain of steps (each from the state the previous step returned: decoding,
generation) writes in place. Continuing a state that was already continued is a branch: it
copies the cache once (O(L), what every step cost with ``torch.cat``), then its own chain
runs in place. So a benchmark that times many steps from one held state times the copy.
Inside ``reserve_kv(n)`` (what ``generate`` uses) a buffer that is allocated gets room for
``n`` more positions, and a prompt run with no state is written into one at once, so a
decode of up to ``n`` tokens never copies the cache (without it, the first step after a
prompt copies the whole prompt's cache, since the prompt's keys fill their tensor).

**Autograd.** The in-place path is taken only when grad mode is off (``torch.no_grad`` /
``torch.inference_mode``: decoding and generation). With grad mode on, an append is a plain
``torch.cat`` (no handle), exactly as a cache without buffers, so training graphs and
gradients are unchanged, and no buffer a graph saved for backward is ever written.

**State bytes.** A state holds L tokens, whatever the capacity behind them: the views are
``[B, H, L, Dh]``, so ``state_size`` / ``state_nbytes_per_sequence`` count L (up to
``2 (L + T)``, or ``L + T + reserve`` inside ``reserve_kv``, positions of capacity may be allocated; the bytes a sequence *holds* are the
L it can read, which is what the contract compares across modes and lengths).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch

MIN_CAPACITY = 16  # smallest buffer: a short decode does not regrow every step at first
# Extra positions a (re)allocated buffer gets beyond what it holds; set by ``reserve_kv``.
_RESERVE: contextvars.ContextVar[int] = contextvars.ContextVar("memzoo_kv_reserve", default=0)


class KVBuffer:
    """Buffers ``k, v [B, H, C, Dh]`` shared by the caches appended from one another.

    ``length`` is the high-water mark: positions ``0 .. length-1`` hold tokens some state
    can read; positions from ``length`` on are free. Not a tensor, so ``state_tensors``
    and ``state_nbytes_per_sequence`` skip it and ``map_state`` passes it through as is.
    """

    __slots__ = ("k", "k_view", "length", "v", "v_view")

    def __init__(self, k: torch.Tensor, v: torch.Tensor, length: int):
        self.k, self.v, self.length = k, v, length
        # The views the last append handed out: a state that holds exactly these objects is
        # a chain's latest state, checked by identity first (a decode step's hot path).
        self.k_view: torch.Tensor | None = None
        self.v_view: torch.Tensor | None = None

    @property
    def capacity(self) -> int:
        return self.k.shape[2]

    def __repr__(self) -> str:
        return f"KVBuffer(length={self.length}, capacity={self.capacity})"


def _is_prefix_view(t: torch.Tensor, buf: torch.Tensor) -> bool:
    """``t`` is exactly ``buf[:, :, :t.shape[2]]`` (same data, strides, batch, heads, width)."""
    return (
        t.data_ptr() == buf.data_ptr()
        and t.stride() == buf.stride()
        and t.shape[:2] == buf.shape[:2]
        and t.shape[3:] == buf.shape[3:]
        and t.dtype == buf.dtype
        and t.device == buf.device
    )


def _can_write_in_place(buffer: KVBuffer | None, k_old, v_old, k_new, v_new) -> bool:
    if buffer is None:
        return False
    past, total = k_old.shape[2], k_old.shape[2] + k_new.shape[2]
    if buffer.length != past or total > buffer.capacity:
        return False  # another state wrote past L (a branch), or the buffer is full
    if buffer.k.is_inference() and not torch.is_inference_mode_enabled():
        return False  # inference tensors cannot be written outside inference mode
    if k_new.dtype != buffer.k.dtype or v_new.dtype != buffer.v.dtype:
        return False
    if k_old is buffer.k_view and v_old is buffer.v_view:
        return True  # the views the last append returned: a decode chain's usual case
    return _is_prefix_view(k_old, buffer.k) and _is_prefix_view(v_old, buffer.v)


def _grown(old: torch.Tensor, new: torch.Tensor, capacity: int) -> torch.Tensor:
    """A fresh ``[B, H, capacity, Dh]`` buffer starting with ``old`` then ``new``."""
    past, total = old.shape[2], old.shape[2] + new.shape[2]
    dtype = torch.result_type(old, new)  # the dtype torch.cat would give
    buf = old.new_empty((*old.shape[:2], capacity, *old.shape[3:]), dtype=dtype)
    buf[:, :, :past] = old
    buf[:, :, past:total] = new
    return buf


def append_kv(
    k_old: torch.Tensor | None,
    v_old: torch.Tensor | None,
    buffer: KVBuffer | None,
    k_new: torch.Tensor,
    v_new: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, KVBuffer | None]:
    """The cache ``(k, v)`` of ``k_old/v_old [B, H, L, Dh]`` followed by ``k_new/v_new [B, H, T, Dh]``.

    Returns ``(k, v, buffer)`` with ``k, v [B, H, L + T, Dh]`` equal to
    ``torch.cat((k_old, k_new), 2)`` (and likewise for v) and the handle the next append
    should be given (``None`` when no buffer backs the result). Never changes a value any
    existing tensor shows; see the module docstring for when it writes in place.
    ``k_old`` None or of length 0 means an empty cache: the new tensors are returned as they
    are (no copy: a prompt that is never continued costs nothing extra).
    """
    if torch.is_grad_enabled():  # training: a plain cat keeps autograd exactly as it was
        if k_old is None or k_old.shape[2] == 0:
            return k_new, v_new, None
        return torch.cat((k_old, k_new), dim=2), torch.cat((v_old, v_new), dim=2), None
    reserve = _RESERVE.get()
    if k_old is None or k_old.shape[2] == 0:
        if not reserve:
            return k_new, v_new, None  # no copy: a prompt that is never continued costs nothing
        k_old, v_old = k_new[:, :, :0], v_new[:, :, :0]  # a prefill that decoding will continue
    for old, new in ((k_old, k_new), (v_old, v_new)):
        if old.shape[:2] != new.shape[:2] or old.shape[3:] != new.shape[3:]:
            # what torch.cat would refuse; a write into a buffer would broadcast silently
            raise ValueError(f"cannot append a {list(new.shape)} cache to a {list(old.shape)} one")
    past = k_old.shape[2]
    total = past + k_new.shape[2]
    if _can_write_in_place(buffer, k_old, v_old, k_new, v_new):
        buffer.k[:, :, past:total] = k_new
        buffer.v[:, :, past:total] = v_new
        buffer.length = total
    else:
        # room for the reserve when one is set (generate knows how many tokens will come),
        # else doubling, which keeps appends amortised O(1)
        capacity = max(MIN_CAPACITY, total + reserve if reserve else 2 * total)
        buffer = KVBuffer(_grown(k_old, k_new, capacity), _grown(v_old, v_new, capacity), total)
    buffer.k_view, buffer.v_view = buffer.k[:, :, :total], buffer.v[:, :, :total]
    return buffer.k_view, buffer.v_view, buffer


@contextlib.contextmanager
def reserve_kv(tokens: int) -> Iterator[None]:
    """Within this block, a cache that has to be (re)allocated gets room for exactly ``tokens``
    more positions beyond what it holds (instead of doubling), and a prompt's cache is allocated at once (not on the first
    decode step). ``generate`` wraps itself in ``reserve_kv(max_new_tokens)``, so no decode
    step copies the cache. Changes capacity only: every value and state stays the same."""
    if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
        raise ValueError(f"reserve_kv: tokens must be an integer >= 0, got {tokens!r}")
    handle = _RESERVE.set(tokens)
    try:
        yield
    finally:
        _RESERVE.reset(handle)
