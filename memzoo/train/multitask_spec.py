"""The ``multitask`` run kind's spec: several tasks, one model whose shared trunk learns them
all at once. Not a Task (it has no data of its own): ``task.name=multitask`` in a config
names this run kind, and ``TaskSpec`` validates its parameters with :class:`MultiTask`.

``multitask`` lists registered tasks (``tasks``, each ``{"name": ..., **params}`` with an
optional ``label``). ``memzoo.train`` trains one :class:`~memzoo.models.multi_head.MultiHeadModel`
on them (:mod:`memzoo.train.recipes.multitask`): the memory blocks are shared — long-term memory in
the parameters that every task writes to — and each task has its own input embedding and
output head (``lm``, ``classify`` or ``regress``, as the task needs).

Each task keeps its own data: :meth:`MultiTask.split_each` returns, per label, the training
and held-out sets a single-task run of that task with the same seed would use. There is no
one joint ``TaskData`` (the heads and target shapes differ).

``sampling`` orders the batches of an epoch (each epoch shows every example of every task
once either way):

- ``round_robin``: one batch of each task in turn, in the listed order; a task whose batches
  are used up drops out until the next epoch.
- ``proportional``: the batches of all tasks shuffled together, so each step draws a task
  with probability proportional to the batches it has left (a bigger data set is drawn more
  often).

Labels name the task in metrics (``accuracy/<label>``) and parameters (``heads.<label>``);
they default to the task name, must be unique and use letters, digits, ``_`` and ``-`` only.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from memzoo.tasks import Task, TaskData, build
from memzoo.tasks.base import derive_seq_len, nested_data_bytes
from memzoo.train.kinds import NOT_SINGLE_TASK

DEFAULT_TASKS = [
    {"name": "mqar", "vocab_size": 64, "seq_len": 32, "num_kv_pairs": 4},
    {"name": "copy", "vocab_size": 8, "seq_len": 32, "copy_len": 4},
]
LABEL = re.compile(r"^[A-Za-z0-9_-]+$")


def _build_entry(index: int, spec: Any) -> tuple[str, Task]:
    """``(label, task)`` of entry ``index`` of ``tasks``; errors name ``tasks[index]``."""
    field = f"tasks[{index}]"
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"{field} must be a mapping with a task 'name', got {spec!r}")
    name = spec["name"]
    if name in NOT_SINGLE_TASK:
        raise ValueError(
            f"{field}: task {name!r} cannot be part of a multitask run (not one of {', '.join(NOT_SINGLE_TASK)})"
        )
    label = spec.get("label", name)
    if not isinstance(label, str) or not LABEL.match(label):
        raise ValueError(f"{field}.label must be letters, digits, '_' or '-', got {label!r}")
    params = {key: value for key, value in spec.items() if key not in ("name", "label")}
    try:
        task = build(name, **params)
    except ValueError as err:  # ConfigError: one line naming the parameter
        raise ValueError(f"{field}: {err}") from None
    if task.head not in ("lm", "classify", "regress"):
        raise ValueError(
            f"{field}: task {name!r} has a {task.head!r} head; a multitask "
            "model has lm, classify or regress heads"
        )
    return label, task


class MultiTask(BaseModel):
    """Several tasks learned at once by one model with a shared trunk and a head per task.

    Worked example (MQAR and copy; each task keeps its own data and head):

    >>> task = MultiTask(tasks=[
    ...     {"name": "mqar", "vocab_size": 16, "seq_len": 12, "num_kv_pairs": 2},
    ...     {"name": "copy", "label": "copy3", "vocab_size": 6, "seq_len": 8, "copy_len": 3},
    ... ])
    >>> list(task.subtasks), task.seq_len
    (['mqar', 'copy3'], 12)
    >>> data = task.split_each(num_train=4, num_test=2, seed=0)
    >>> [tuple(data[label][0].inputs.shape) for label in data]
    [(4, 12), (4, 8)]
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = "multitask"
    description: ClassVar[str] = (
        "several tasks at once: one shared memory trunk, an embedding and a head per task"
    )
    head: ClassVar[str] = "multi"

    tasks: list[dict[str, Any]] = Field(
        DEFAULT_TASKS, min_length=2, description="tasks: [{name: ..., label?: ..., params}]"
    )
    sampling: Literal["round_robin", "proportional"] = Field(
        "round_robin", description="batch order: tasks in turn, or drawn by batches left"
    )
    seq_len: int | None = Field(None, description="derived: the longest task's seq_len")

    @model_validator(mode="after")
    def _check_tasks(self):
        entries = [_build_entry(i, spec) for i, spec in enumerate(self.tasks)]
        labels = [label for label, _ in entries]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(
                f"tasks: label(s) {repeated} appear more than once; give each entry a distinct 'label'"
            )
        derive_seq_len(self, [task for _, task in entries], "the longest task's")
        return self

    @property
    def subtasks(self) -> dict[str, Task]:
        """The tasks, built, keyed by label, in the listed order."""
        return dict(_build_entry(i, spec) for i, spec in enumerate(self.tasks))

    @property
    def input_vocab_size(self) -> int:
        """The largest token vocabulary among the tasks (each task has its own embedding)."""
        return max(
            (t.input_vocab_size for t in self.subtasks.values() if not t.input_dim),
            default=0,
        )

    @property
    def output_vocab_size(self) -> int:
        """The largest head among the tasks (each task has its own head)."""
        return max(t.output_vocab_size for t in self.subtasks.values())

    def own_data_bytes(self) -> tuple[int, list[str]]:
        """What every subtask builds from its own parameters (see ``Task.own_data_bytes``)."""
        return nested_data_bytes((f"task.tasks[{label}]", task) for label, task in self.subtasks.items())

    def evaluation_sweep(self) -> dict:
        """None of its own: each subtask is evaluated by the multitask recipe."""
        return {}

    def split_each(self, num_train: int, num_test: int, seed: int) -> dict[str, tuple[TaskData, TaskData]]:
        """Per label, ``(train, test)`` as that task's own ``split`` draws them with ``seed``."""
        return {label: task.split(num_train, num_test, seed) for label, task in self.subtasks.items()}
