"""Continual learning: task A, then task B, one model; does B erase what A taught?

Shape legend: N examples, T ``seq_len`` = the longer of the two tasks' lengths.

``continual`` names two registered tasks, ``task_a`` and ``task_b`` (each ``{"name": ...,
**params}``). ``memzoo.train`` trains a ``continual`` config phase after phase — A, then B
starting from A's weights — and records the accuracy on A before and after learning B, and on B
(:mod:`memzoo.train.recipes.continual` defines every metric and cites where it comes from).

**Tokens.** With ``b_tokens="own"`` (the default) B's token ids are moved above A's — every id
of B, inputs and answers, plus A's input vocabulary (:class:`OwnTokens`) — so no id means one
thing in A and another in B, and the two answer spaces are disjoint: what B overwrites of A lies
in the parameters both tasks share (the blocks, the shared output layer), not in a token B
reuses. ``b_tokens="shared"`` keeps both tasks' own ids (the model's vocabularies are then the
larger of the two).

**Defaults.** Two sets of facts in the weights: A = 64 keys mapped to 8 values
(``memorization``, map 0), B = another 64 facts (map 1), in their own ids. Each is learnable
after the other: a 2-block attention or GRU model (d_model 64) learns either in one epoch,
whichever came first (``tests/test_continual_probe.py``).

**Remedies** (``remedy``; defined and cited in :mod:`memzoo.train.recipes.continual_remedies`):
``none``; ``replay`` (a buffer of ``replay_buffer`` of A's training examples, mixed into every
phase-B batch as ``replay_fraction`` of it); ``ewc`` (elastic weight consolidation: the diagonal
Fisher of A's loss from ``fisher_samples`` examples, penalty ``ewc_lambda / 2 * sum F (θ - θ_A)²``).
``learned_accuracy`` is the test accuracy from which a phase counts as learned: retention is
reported only when A was learned before B and B was learned after A.

The task's own ``generate`` returns the *joint* data — the first ``ceil(N/2)`` examples from
A, the rest from B (in its ids), right-padded to T with token 0 and unscored targets — with the
slice label ``phase`` (0 = A, 1 = B): the reference a model trained on both at once would see,
and a way to score one model on both phases in one pass.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from pydantic import Field, model_validator

from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData, constant_slice, derive_seq_len, nested_data_bytes
from memzoo.tasks.registry import build, register_task

DEFAULT_A = {"name": "memorization", "num_facts": 64, "num_values": 8, "seq_len": 16, "map_seed": 0}
DEFAULT_B = {"name": "memorization", "num_facts": 64, "num_values": 8, "seq_len": 16, "map_seed": 1}
REMEDIES = ("none", "replay", "ewc")
#: the parameters of each remedy: set with another remedy they would do nothing, so they are refused
REMEDY_PARAMS = {"replay": ("replay_fraction", "replay_buffer"), "ewc": ("ewc_lambda", "fisher_samples")}


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


def move_tokens(data: TaskData, offset: int) -> TaskData:
    """``data`` with every token id, inputs and scored targets, plus ``offset`` (may be < 0)."""
    targets = torch.where(data.targets != IGNORE_INDEX, data.targets + offset, data.targets)
    return TaskData(data.inputs + offset, targets, dict(data.slices))


class OwnTokens(Task):
    """Task ``inner`` in token ids of its own: each of its ids plus ``offset`` (not registered:
    the form phase B takes in a continual run with ``b_tokens="own"``).

    >>> from memzoo.tasks.memorization import Memorization
    >>> inner = Memorization(num_facts=2, num_values=2, seq_len=2, map_seed=1)
    >>> task = OwnTokens(inner=inner, offset=10)
    >>> task.name, task.seq_len, task.input_vocab_size, task.output_vocab_size
    ('memorization', 2, 15, 15)
    >>> inner.generate(1, seed=0).inputs.tolist(), task.generate(1, seed=0).inputs.tolist()
    ([[1, 4]], [[11, 14]])
    """

    description: ClassVar[str] = "a task in token ids moved up by an offset (a continual run's phase B)"

    inner: Task
    offset: int = Field(ge=0, description="added to every token id of the inner task")
    seq_len: int | None = Field(None, description="derived: the inner task's")

    @model_validator(mode="after")
    def _derive(self):
        derive_seq_len(self, (self.inner,), "the inner task's")
        return self

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.inner.name

    @property
    def input_vocab_size(self) -> int:
        return self.offset + self.inner.input_vocab_size

    @property
    def output_vocab_size(self) -> int:
        return self.offset + self.inner.output_vocab_size

    def preferred_segment_len(self) -> int | None:
        return self.inner.preferred_segment_len()

    def own_data_bytes(self) -> tuple[int, list[str]]:
        return self.inner.own_data_bytes()

    def training_set_metrics(self, train: TaskData) -> dict[str, float]:
        return self.inner.training_set_metrics(move_tokens(train, -self.offset))

    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        return self.inner.baseline_metrics(move_tokens(train, -self.offset), move_tokens(test, -self.offset))

    def evaluation_sweep(self) -> dict[str, dict[int | float, Task]]:
        sweep = self.inner.evaluation_sweep()
        return {
            k: {v: OwnTokens(inner=t, offset=self.offset) for v, t in d.items()} for k, d in sweep.items()
        }

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        return move_tokens(self.inner._generate(num_examples, generator), self.offset)


@register_task("continual")
class Continual(Task):
    """Two tasks learned one after the other by the same model.

    Worked example (A: memorization, 2 pairs of its 4 facts, right-padded to B's length;
    B: copy one token across blanks, in its own ids: each of copy's ids plus A's 8; ``generate``
    gives the joint data, one example each):

    >>> task = Continual(
    ...     task_a={"name": "memorization", "num_facts": 4, "num_values": 3, "seq_len": 4},
    ...     task_b={"name": "copy", "vocab_size": 5, "seq_len": 6, "copy_len": 1},
    ... )
    >>> task.seq_len, task.input_vocab_size
    (6, 13)
    >>> data = task.generate(num_examples=2, seed=0)
    >>> data.inputs.tolist()
    [[3, 7, 4, 5, 0, 0], [11, 8, 8, 8, 8, 9]]
    >>> data.targets.tolist()
    [[7, -100, 5, -100, -100, -100], [-100, -100, -100, -100, -100, 11]]
    >>> data.slices["phase"].tolist()
    [0, 1]
    """

    description = "train on task A, then task B; accuracy on A before and after (retention), remedies"

    task_a: dict[str, Any] = Field(DEFAULT_A, description="first task: {name: ..., params}")
    task_b: dict[str, Any] = Field(DEFAULT_B, description="second task: {name: ..., params}")
    b_tokens: Literal["own", "shared"] = Field(
        "own", description="own: B's token ids moved above A's (no id shared); shared: both keep theirs"
    )
    remedy: Literal["none", "replay", "ewc"] = Field("none", description="what phase B does to keep A")
    replay_fraction: float = Field(0.5, ge=0, lt=1, description="replay: A's share of each B batch")
    replay_buffer: int = Field(32, ge=1, description="replay: A's training examples kept (a random subset)")
    ewc_lambda: float = Field(1e7, ge=0, description="ewc: penalty weight λ of (λ/2) Σ F (θ - θ_A)²")
    fisher_samples: int = Field(256, ge=1, description="ewc: A's training examples the Fisher averages")
    learned_accuracy: float = Field(
        0.5, gt=0, le=1, description="a phase counts as learned from this test accuracy (else no retention)"
    )
    b_alone: bool = Field(False, description="also train B alone from the same start: accuracy_b_alone")
    seq_len: int | None = Field(None, description="derived: the longer task's seq_len")

    @model_validator(mode="after")
    def _check_phases(self):
        derive_seq_len(self, self.phases, "the longer task's")
        for remedy, params in REMEDY_PARAMS.items():
            stray = [p for p in params if p in self.model_fields_set and self.remedy != remedy]
            if stray:
                raise ValueError(f"{stray[0]} applies to remedy {remedy!r}, but remedy is {self.remedy!r}")
        return self

    @property
    def phases(self) -> tuple[Task, Task]:
        """The two tasks, built: ``(A, B)``, B in its own ids with ``b_tokens="own"``."""
        a, b = _build_phase("task_a", self.task_a), _build_phase("task_b", self.task_b)
        return a, (OwnTokens(inner=b, offset=a.input_vocab_size) if self.b_tokens == "own" else b)

    @property
    def input_vocab_size(self) -> int:
        return max(task.input_vocab_size for task in self.phases)

    @property
    def output_vocab_size(self) -> int:
        return max(task.output_vocab_size for task in self.phases)

    def own_data_bytes(self) -> tuple[int, list[str]]:
        """What both phases build from their own parameters (B's named as its own task's)."""
        a, b = self.phases
        return nested_data_bytes(zip(("task.task_a", "task.task_b"), (a, getattr(b, "inner", b))))

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n_a = (num_examples + 1) // 2
        parts = []
        for phase, (task, count) in enumerate(zip(self.phases, (n_a, num_examples - n_a))):
            data = task._generate(count, generator)  # the same generator: one seed for both
            parts.append((*pad_to(data, self.seq_len), constant_slice(count, phase)))
        inputs, targets, phase = (torch.cat(column) for column in zip(*parts))
        return TaskData(inputs, targets, {"phase": phase})


def pad_to(data: TaskData, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``data``'s inputs and targets right-padded to ``seq_len`` (token 0, unscored targets)."""
    pad = seq_len - data.inputs.shape[1]
    inputs = torch.nn.functional.pad(data.inputs, (0, pad), value=0)
    return inputs, torch.nn.functional.pad(data.targets, (0, pad), value=IGNORE_INDEX)
