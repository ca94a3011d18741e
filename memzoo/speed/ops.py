"""Op-level rows of ``memzoo speed``: a fast-weight layer's chunked op against its naive
recurrence, on the very inputs the layer hands the op.

A layer's ratio against its ``algorithm="naive"`` twin includes the projections, short
convolutions and norms both share; these rows (layer ``"<name>/op"``) time the op alone.
The inputs are captured by running the layer once inside :func:`recording_op_calls`, which
patches ``parallel_form`` where the layer's classes look it up, so any layer that calls
``memzoo.layers._fast_weight.parallel_form`` gets op rows without code of its own.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import NamedTuple
from unittest import mock

import torch

from memzoo.layers.base import detach_state
from memzoo.speed.timing import timed_row

OP_REFERENCE = "naive recurrence (op)"


class OpCall(NamedTuple):
    """One ``parallel_form`` call: both forms of the op and the arguments it got."""

    chunk_fn: Callable
    naive_fn: Callable
    inputs: tuple
    initial_state: object
    chunk_size: int


@contextlib.contextmanager
def recording_op_calls(layer: torch.nn.Module) -> Iterator[list[OpCall]]:
    """Record every ``parallel_form`` call ``layer`` makes inside the block (the name is
    patched in the module of each class of the layer that uses it, then restored)."""
    calls: list[OpCall] = []

    def recorder(original):
        def record(algorithm, chunk_fn, naive_fn, *inputs, initial_state, chunk_size):
            calls.append(
                OpCall(chunk_fn, naive_fn, inputs, initial_state, min(chunk_size, inputs[0].shape[2]))
            )
            return original(
                algorithm, chunk_fn, naive_fn, *inputs, initial_state=initial_state, chunk_size=chunk_size
            )

        return record

    with contextlib.ExitStack() as patches:
        for module_name in {cls.__module__ for cls in type(layer).__mro__}:
            module = sys.modules.get(module_name)
            original = getattr(module, "parallel_form", None)
            if original is not None:
                patches.enter_context(mock.patch.object(module, "parallel_form", recorder(original)))
        yield calls


def captured_op_call(layer: torch.nn.Module, x: torch.Tensor) -> OpCall | None:
    """The first ``parallel_form`` call ``layer(x)`` makes, inputs detached; None if none."""
    with torch.no_grad(), recording_op_calls(layer) as calls:
        layer(x)
    if not calls:
        return None
    call = calls[0]
    return call._replace(
        inputs=tuple(t.detach() for t in call.inputs), initial_state=detach_state(call.initial_state)
    )


def _op_forward(op, call: OpCall):
    with torch.no_grad():
        return op(*call.inputs)


def _op_forward_backward(op, call: OpCall):
    leaves = [t.clone().requires_grad_(True) if t.is_floating_point() else t for t in call.inputs]
    out = op(*leaves)[0]  # the read-out [B, H, T, Dv]
    out.float().pow(2).mean().backward()


def op_rows(name: str, layer: torch.nn.Module, settings, device, peak: float) -> Iterator[dict]:
    """fwd / fwdbwd rows ``"<name>/op"`` for every sequence length, chunked op vs naive op;
    nothing for a layer that makes no ``parallel_form`` call."""
    for seq_len in settings.seq_lens:
        x = torch.randn(settings.batch_size, seq_len, settings.d_model, device=device)
        call = captured_op_call(layer, x)
        if call is None:
            return
        for mode in ("fwd", "fwdbwd"):
            if mode not in settings.modes:
                continue
            run = _op_forward if mode == "fwd" else _op_forward_backward
            chunked = functools.partial(
                call.chunk_fn, initial_state=call.initial_state, chunk_size=call.chunk_size
            )
            naive = functools.partial(call.naive_fn, initial_state=call.initial_state)
            fns = [lambda: run(chunked, call), lambda: run(naive, call)]
            row = timed_row(f"{name}/op", seq_len, mode, fns, settings, device, peak)
            row["extra"]["reference"] = OP_REFERENCE
            yield row
