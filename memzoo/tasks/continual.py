"""Continual learning: task A, then task B, one model; does B erase what A taught?

Shape legend: N examples, T ``seq_len`` = the longer of the two tasks' lengths.

``continual`` names two registered tasks, ``task_a`` and ``task_b`` (each ``{"name": ...,
**params}``). ``memzoo.train`` trains a ``continual`` config phase after phase — A, then B
starting from A's weights — and records the accuracy on A before and after learning B
(:mod:`memzoo.train.recipes.continual`: ``accuracy_a_before``, ``accuracy_a_after``,
``accuracy_b``, ``retention``, ``forgetting``).

The model must take both tasks' tokens, so its vocabularies are the larger of the two. The
task's own ``generate`` returns the *joint* data — the first ``ceil(N/2)`` examples from A,
the rest from B, right-padded to T with token 0 and unscored targets — with the slice label
``phase`` (0 = A, 1 = B): the reference a model trained on both at once would see, and a way
to score one model on both phases in one pass.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field, model_validator

from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData, constant_slice, derive_seq_len, nested_data_bytes
from memzoo.tasks.registry import build, register_task

DEFAULT_A = {"name": "memorization", "num_facts": 64, "num_values": 8, "seq_len": 16}
DEFAULT_B = {"name": "mqar", "vocab_size": 64, "seq_len": 32, "num_kv_pairs": 4}


def _build_phase(field: str, spec: Any) -> Task:
    """The task a phase spec names; errors name the field (``task_a`` / ``task_b``)."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"{field} must be a mapping with a task 'name', got {spec!r}")
    params = {key: value for key, value in spec.items() if key != "name"}
    if spec["name"] == "continual":
        raise ValueError(f"{field} cannot itself be a continual task")
    try:
        task = build(spec["name"], **params)
    except ValueError as err:  # ConfigError: one line naming the parameter
        raise ValueError(f"{field}: {err}") from None
    if task.head != "lm":
        raise ValueError(
            f"{field}: task {task.name!r} has a {task.head!r} head; continual runs need per-token (lm) tasks"
        )
    return task


@register_task("continual")
class Continual(Task):
    """Two tasks learned one after the other by the same model.

    Worked example (A: memorization, 2 pairs of its 4 facts, right-padded to B's length;
    B: copy one token across blanks; ``generate`` gives the joint data, one example each):

    >>> task = Continual(
    ...     task_a={"name": "memorization", "num_facts": 4, "num_values": 3, "seq_len": 4},
    ...     task_b={"name": "copy", "vocab_size": 5, "seq_len": 6, "copy_len": 1},
    ... )
    >>> task.seq_len, task.input_vocab_size
    (6, 8)
    >>> data = task.generate(num_examples=2, seed=0)
    >>> data.inputs.tolist()
    [[3, 7, 4, 5, 0, 0], [3, 0, 0, 0, 0, 1]]
    >>> data.targets.tolist()
    [[7, -100, 5, -100, -100, -100], [-100, -100, -100, -100, -100, 3]]
    >>> data.slices["phase"].tolist()
    [0, 1]
    """

    description = "train on task A, then task B; accuracy on A before and after (retention)"

    task_a: dict[str, Any] = Field(DEFAULT_A, description="first task: {name: ..., params}")
    task_b: dict[str, Any] = Field(DEFAULT_B, description="second task: {name: ..., params}")
    seq_len: int | None = Field(None, description="derived: the longer task's seq_len")

    @model_validator(mode="after")
    def _check_phases(self):
        a, b = _build_phase("task_a", self.task_a), _build_phase("task_b", self.task_b)
        derive_seq_len(self, (a, b), "the longer task's")
        return self

    @property
    def phases(self) -> tuple[Task, Task]:
        """The two tasks, built: ``(A, B)``."""
        return _build_phase("task_a", self.task_a), _build_phase("task_b", self.task_b)

    @property
    def input_vocab_size(self) -> int:
        return max(task.input_vocab_size for task in self.phases)

    @property
    def output_vocab_size(self) -> int:
        return max(task.output_vocab_size for task in self.phases)

    def own_data_bytes(self) -> tuple[int, list[str]]:
        """What both phases build from their own parameters."""
        return nested_data_bytes(zip(("task.task_a", "task.task_b"), self.phases))

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n_a = (num_examples + 1) // 2
        parts = []
        for phase, (task, count) in enumerate(zip(self.phases, (n_a, num_examples - n_a))):
            data = task._generate(count, generator)  # the same generator: one seed for both
            pad = self.seq_len - task.seq_len
            parts.append(
                (
                    torch.nn.functional.pad(data.inputs, (0, pad), value=0),
                    torch.nn.functional.pad(data.targets, (0, pad), value=IGNORE_INDEX),
                    constant_slice(count, phase),
                )
            )
        inputs, targets, phase = (torch.cat(column) for column in zip(*parts))
        return TaskData(inputs, targets, {"phase": phase})
