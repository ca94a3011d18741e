"""The one memory-layer interface and helpers for layer states.

Every memory layer maps ``x: [B, T, D] -> y: [B, T, D]`` and carries a state::

    y, state = layer(x, state=None)
    state = layer.init_state(batch_size, device=None, dtype=None)
    layer.state_size(seq_len) -> int   # bytes of one sequence's state after seq_len tokens (fp32)
    layer.kind                         # "short" or "long"

Contract (tested for every registered layer): running a sequence whole, in chained chunks
(any split) or token by token gives the same outputs and the same final state. ``forward``
never mutates the module. A state is a ``NamedTuple`` of batch-first tensors (or nested
tuples of them); its structure is the same in every mode.

Optional views for inspection
-----------------------------
A layer may also show what it chose to write and where it reads. Both views read ``x``
``[B, T, D]`` (what ``forward`` receives) as a sequence from its start (a fresh state) and run
in one batched pass (a per-token loop only where the layer's own step form needs one). They
get their values from the private methods ``forward`` calls (projections, gate functions), so
they cannot drift; where ``forward`` runs a fused kernel (SDPA, cuDNN), the view spells its
math out, and ``tests/test_layer_views.py`` checks that it reproduces the layer's output:

* :class:`GateView`: ``layer.gate_units`` (a class attribute: each gate's name -> its units, in
  one line) and ``layer.write_gates(x) -> {name: [B, T, H]}``, the value the forward applies
  at each token, per head (``H = 1`` for a layer-wide gate; per unit for LSTM/GRU). A gate
  applied per chunk is repeated over the chunk's tokens, and is ``NaN`` on the tokens of a
  trailing chunk that this sequence has not finished (not applied yet).
* :class:`AttentionView`: ``layer.attention_weights(x) -> [B, H, T, T]``, the softmax
  probability query position t puts on position s of the sequence; exactly 0 where masked
  (the future, outside a window). A row sums to ``1 - (mass read off the sequence)``: on
  learned slots (``persistent``: ``slot_weights(x)``) or on what a state held before ``x``.
  ``attention``, ``attention_lstm``, ``sliding_window`` and ``persistent`` also take
  ``attention_weights(x, state)``: ``[B, H, T, L + T]``, the L positions the state holds first.

:func:`has_gate_view`, :func:`gate_names` and :func:`has_attention_view` answer for any layer,
a user's included; a layer without a view is an answer (``False``, ``[]``), not an error.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple, Protocol, runtime_checkable

import torch
from torch import nn

from memzoo.errors import ConfigError

KINDS = ("short", "long")
STATE_GROWTHS = ("O(1)", "O(window)", "O(T)")


def state_tensors(state: Any) -> list[torch.Tensor]:
    """All tensors inside a (nested) state, in a fixed order. Non-tensor leaves are skipped."""
    if state is None:
        return []
    if isinstance(state, torch.Tensor):
        return [state]
    if isinstance(state, dict):
        return [t for key in sorted(state) for t in state_tensors(state[key])]
    if isinstance(state, (tuple, list)):
        return [t for item in state for t in state_tensors(item)]
    return []


def state_nbytes_per_sequence(state: Any) -> int:
    """Bytes one sequence of a batch-first state holds, counted as fp32 (4 bytes/element)."""
    tensors = state_tensors(state)
    if not tensors:
        return 0
    batch = tensors[0].shape[0]
    return sum(4 * t.numel() // max(batch, 1) for t in tensors)


def map_state(fn, state: Any) -> Any:
    """Apply ``fn`` to every tensor of a (nested) state, keeping its structure."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, dict):
        return {key: map_state(fn, value) for key, value in state.items()}
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # NamedTuple
        return type(state)(*(map_state(fn, item) for item in state))
    if isinstance(state, (tuple, list)):
        return type(state)(map_state(fn, item) for item in state)
    return state


def detach_state(state: Any) -> Any:
    """The same state cut from the autograd graph (truncated backpropagation)."""
    return map_state(lambda t: t.detach(), state)


def check_input(x: torch.Tensor, d_model: int, name: str) -> None:
    """Raise a clear error unless ``x`` is ``[B, T, d_model]``."""
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ConfigError(f"{name}: expected input of shape [batch, time, {d_model}], got {list(x.shape)}")


def last_boundary(segment_len: int, seq_len: int | None = None) -> int:
    """Tokens read before the last segment boundary of a ``seq_len``-token sequence read in
    segments of ``segment_len`` (the first boundary, ``segment_len``, without ``seq_len`` or
    for a sequence of one segment).

    >>> last_boundary(64), last_boundary(64, 64), last_boundary(64, 65), last_boundary(64, 600)
    (64, 64, 64, 576)
    """
    if seq_len is None:
        return segment_len
    return segment_len * max(1, (seq_len - 1) // segment_len)


class MemoryLayer(nn.Module):
    """Base class of every memory layer.

    Subclasses set the class attributes below, implement ``forward``, ``init_state`` and
    ``state_size``, and are registered with ``@register("name")``.
    """

    kind: ClassVar[str] = "short"  # "short": memory of the context; "long": beyond it
    family: ClassVar[str] = ""  # e.g. "attention", "recurrent", "fast-weight"
    state_growth: ClassVar[str] = "O(1)"  # how state bytes grow with tokens seen
    description: ClassVar[str] = ""  # one line for `memzoo layers`

    def __init__(self, d_model: int):
        super().__init__()
        if not isinstance(d_model, int) or d_model <= 0:
            raise ConfigError(f"d_model must be a positive integer, got {d_model!r}")
        self.d_model = d_model

    def forward(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError  # abstract: every registered layer overrides it

    def init_state(self, batch_size: int, device=None, dtype=None) -> Any:
        raise NotImplementedError  # abstract: every registered layer overrides it

    def state_size(self, seq_len: int) -> int:
        raise NotImplementedError  # abstract: every registered layer overrides it

    def boundary_state_size(self, segment_len: int, seq_len: int | None = None) -> int:
        """Bytes of state one sequence carries across a segment boundary when its input is
        read in segments of ``segment_len`` tokens (``SegmentRunner``): what can hold
        information from one segment to the next, the budget long-term memories are compared
        at. The most a ``seq_len``-token sequence carries: the state at its last boundary
        (:func:`last_boundary`; the first one without ``seq_len``), which differs only for a
        state that grows with the tokens read (attention's cache). By default all of
        :meth:`state_size` there; a layer whose state includes a buffer that is empty at every
        boundary (a segment or chunk still being collected) leaves it out."""
        return self.state_size(last_boundary(segment_len, seq_len))

    def _param_device_dtype(self, device=None, dtype=None):
        """Default device/dtype for a fresh state: those of the layer's parameters."""
        ref = next(self.parameters(), None)
        device = device if device is not None else (ref.device if ref is not None else None)
        dtype = dtype if dtype is not None else (ref.dtype if ref is not None else torch.float32)
        return device, dtype


class LayerInfo(NamedTuple):
    name: str
    kind: str
    family: str
    state_growth: str
    description: str


# --- optional views for inspection (see the module docstring) -----------------------------


@runtime_checkable
class GateView(Protocol):
    """A layer that shows its write gates: ``gate_units`` and ``write_gates``."""

    gate_units: dict[str, str]  # gate name -> its units and range, one line

    def write_gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``x [B, T, D]`` from a sequence's start -> ``{name: [B, T, H]}`` per ``gate_units``."""
        ...


@runtime_checkable
class AttentionView(Protocol):
    """A layer that shows where its queries read: ``attention_weights``."""

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T, D]`` from a sequence's start -> ``[B, H, T, T]`` softmax weights."""
        ...


def has_gate_view(layer: Any) -> bool:
    """Whether ``layer`` (any object: a user's layer too) implements :class:`GateView`."""
    return isinstance(layer, GateView)


def gate_names(layer: Any) -> list[str]:
    """The names of ``layer``'s write gates, in order; ``[]`` for a layer without a gate view."""
    return list(layer.gate_units) if has_gate_view(layer) else []


def has_attention_view(layer: Any) -> bool:
    """Whether ``layer`` implements :class:`AttentionView`."""
    return isinstance(layer, AttentionView)
