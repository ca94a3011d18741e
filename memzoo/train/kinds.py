"""The kinds of run, in one table: what ``task.name`` selects besides a single task, and what
each kind allows. ``memzoo.train.run_kinds`` holds how each kind is trained (``_RUNNERS``, one
entry per kind, checked by ``tests/test_train_kinds.py``); the configs, the curriculum and the
multitask spec read the names here (they sit below ``run_kinds``, so the table sits below them).

A name not in :data:`KINDS` is a single task (``SINGLE``): curriculum and truncated
backpropagation apply to it, it can be resumed, it can run under torchrun, and it can be an
entry of a multitask run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunKind:
    """What a kind of run allows.

    Attributes:
        name: the ``task.name`` that selects it (``"single"`` for any registered task).
        resumable: ``memzoo train --resume`` can continue it.
        distributed: it may run under torchrun (several processes).
    """

    name: str
    resumable: bool
    distributed: bool


SINGLE = RunKind("single", resumable=True, distributed=True)
KINDS: dict[str, RunKind] = {
    kind.name: kind
    for kind in (
        RunKind("multitask", resumable=False, distributed=False),  # MultitaskRecipe
        RunKind("continual", resumable=False, distributed=False),  # two single-task runs composed
        RunKind("translate", resumable=False, distributed=True),  # TranslationRecipe
    )
}
#: the task names that are kinds of their own, not one task (no curriculum, no multitask entry)
NOT_SINGLE_TASK = tuple(KINDS)
#: what ``--resume`` can continue, in words
RESUMABLE = "single-task runs"


def kind_of(task_name: str) -> RunKind:
    """The run kind ``task.name`` selects."""
    return KINDS.get(task_name, SINGLE)
