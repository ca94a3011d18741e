"""Profiler labels of the phases of a training step (``torch.profiler.record_function``).

The run lifecycle labels every batch's three phases, so a profile of any run
(``memzoo profile``, or ``torch.profiler`` around ``memzoo.fit``) shows where a step's time
goes: :data:`DATA` (drawing the next batch), :data:`FORWARD_BACKWARD` (the recipe's
``train_step``) and :data:`OPTIMIZER` (clipping, the optimiser step, the schedule). Without an
active profiler a label costs a few microseconds a step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from torch.profiler import record_function

DATA = "memzoo.data"
FORWARD_BACKWARD = "memzoo.forward_backward"
OPTIMIZER = "memzoo.optimizer_step"
PHASES = (DATA, FORWARD_BACKWARD, OPTIMIZER)

_END = object()


def labelled_batches(batches: Iterable[Any]) -> Iterator[Any]:
    """The items of ``batches``, each drawn under the :data:`DATA` label."""
    iterator = iter(batches)
    while True:
        with record_function(DATA):
            batch = next(iterator, _END)
        if batch is _END:
            return
        yield batch
