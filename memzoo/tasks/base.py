"""The task interface: a validated set of parameters that generates (inputs, targets) from a seed.

Shape legend: N examples, T ``seq_len``.

Conventions every task follows:

- ``inputs[n, t]`` is the token the model reads at position ``t``; ``targets[n, t]`` is what the
  model should predict *at* position ``t`` (next-token convention: usually the token at
  ``t + 1``), or ``-100`` (``IGNORE_INDEX``, what ``torch.nn.functional.cross_entropy`` skips)
  wherever nothing is scored.
- Token ids of ``inputs`` lie in ``[0, input_vocab_size)``; scored targets lie in
  ``[0, output_vocab_size)``.
- ``generate(num_examples, seed)`` is deterministic: the same seed gives the same tensors, another
  seed other tensors. It runs vectorised on CPU with its own ``torch.Generator``, so it never
  touches the global RNG.
- ``slices`` label each example (``[N]`` long tensors such as ``num_kv_pairs``) so accuracy can be
  broken down by them.

Parameters are pydantic fields (frozen, unknown names rejected); an impossible combination
raises a ``ValueError`` whose message names the parameter(s). ``memzoo.tasks.build`` turns
either into a one-line ``ConfigError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field

from memzoo.errors import ConfigError
from memzoo.models.targets import IGNORE_INDEX  # noqa: F401  (re-exported)

TEST_SEED_OFFSET = 1_000_003  # held-out data never shares a generator seed with training
VALIDATION_SEED_OFFSET = 2_000_029  # nor does the validation set, with either


@dataclass
class TaskData:
    """Generated examples of one task.

    Attributes:
        inputs: ``LongTensor [N, T]`` tokens the model reads, or a float tensor ``[N, T, F]``
            of real-valued features (tasks with an ``input_dim``).
        targets: ``LongTensor [N, T]`` prediction made at each position, ``-100`` where unscored;
            or ``LongTensor [N]`` one class per example (``classify`` head); or a float tensor
            ``[N, K]`` of real values per example (``regress`` head); or a float tensor
            ``[N, T, K]`` of 0/1 labels per position, ``-100`` in every label of an unscored
            position (``multilabel`` head, see ``memzoo.metrics.multilabel``).
        slices: per-example labels, each a ``LongTensor [N]``, keyed by name.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    slices: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tokens = self.inputs.dtype == torch.long and self.inputs.dim() == 2
        features = self.inputs.is_floating_point() and self.inputs.dim() == 3
        if not (tokens or features):
            raise TypeError(
                f"TaskData.inputs must be a long [N, T] or a float [N, T, F] tensor; got "
                f"{self.inputs.dtype} {tuple(self.inputs.shape)}"
            )
        num, per_token = self.inputs.shape[0], self.inputs.shape[:2]
        long_targets = self.targets.dtype == torch.long
        per_frame = self.targets.dim() == 3 and self.targets.shape[:2] == per_token  # multilabel
        if not (
            (long_targets and self.targets.shape in (per_token, (num,)))
            or (self.targets.is_floating_point() and self.targets.dim() == 2 and len(self.targets) == num)
            or (self.targets.is_floating_point() and per_frame)
        ):
            raise ValueError(
                f"TaskData.targets must be long [N, T] or [N], or float [N, K] or [N, T, K], for inputs "
                f"{tuple(self.inputs.shape)}; got {self.targets.dtype} {tuple(self.targets.shape)}"
            )
        for key, labels in self.slices.items():
            if labels.dtype != torch.long or labels.shape != self.inputs.shape[:1]:
                raise ValueError(f"TaskData.slices[{key!r}] must be a long tensor of shape [N]")

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def rows(self, index: torch.Tensor | slice) -> TaskData:
        """The examples at ``index`` (a slice or a long tensor of row indices), slices kept."""
        return TaskData(
            self.inputs[index], self.targets[index], {k: v[index] for k, v in self.slices.items()}
        )


@dataclass
class DataSplits:
    """The three disjoint parts of a run's data: ``train`` to fit, ``validation`` to select
    (early stopping, best checkpoint, learning rate), ``test`` scored once at the end."""

    train: TaskData
    validation: TaskData
    test: TaskData


class Task(BaseModel):
    """Base class of every synthetic task. Subclasses add their parameters as pydantic fields,
    set the ClassVars and implement ``_generate``; register them with ``@register_task(name)``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    head: ClassVar[str] = "lm"

    seq_len: int = Field(256, ge=1, description="tokens per example (T)")

    @property
    def input_vocab_size(self) -> int:
        """Number of token ids the model embeds, special tokens included."""
        raise NotImplementedError

    @property
    def output_vocab_size(self) -> int:
        """Size of the language-model head: every scored target is below it."""
        return self.input_vocab_size

    def generate(self, num_examples: int, seed: int) -> TaskData:
        """``num_examples`` examples, deterministic in ``seed``. See the module docstring."""
        if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples < 0:
            raise ConfigError(f"num_examples must be an integer >= 0, got {num_examples!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"seed must be an integer, got {seed!r}")
        generator = torch.Generator().manual_seed(seed)
        data = self._generate(num_examples, generator)
        if data.inputs.shape != (num_examples, self.seq_len):
            raise AssertionError(
                f"task {self.name!r} generated inputs of shape {tuple(data.inputs.shape)}, "
                f"expected {(num_examples, self.seq_len)}"
            )
        return data

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """Training and held-out data. Synthetic tasks draw them with two different seeds;
        a task on a fixed data set overrides this to return its own train/test split."""
        return self.generate(num_train, seed), self.generate(num_test, seed + TEST_SEED_OFFSET)

    def splits(self, num_train: int, num_validation: int, num_test: int, seed: int) -> DataSplits:
        """Training, validation and test data.

        A synthetic task draws each part from its own generator seed (``seed``,
        ``seed + VALIDATION_SEED_OFFSET``, ``seed + TEST_SEED_OFFSET``). A task on a fixed data
        set overrides this and splits the validation part off its training data (seeded, a
        stated fraction), never off the test part."""
        train, test = self.split(num_train, num_test, seed)
        return DataSplits(train, self.generate(num_validation, seed + VALIDATION_SEED_OFFSET), test)

    # ---- optional hooks: what a task adds to a run (defaults: nothing) --------------------
    @property
    def input_dim(self) -> int | None:
        """Features per position for real-valued inputs ``[N, T, F]``; None for token ids."""
        return None

    def preferred_segment_len(self) -> int | None:
        """The segment length the task is meant to be read in (``SegmentRunner``), used when
        ``train.segment_len`` is not set; None: whole sequences."""
        return None

    def training_set_metrics(self, train: TaskData) -> dict[str, float]:
        """Facts about the training set, e.g. ``memorization``'s ``facts_seen_fraction``."""
        return {}

    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        """What a model-free baseline fitted on ``train`` scores on ``test``, in the units of
        the run's own metric (e.g. ``majority_accuracy``, ``seasonal_naive_mae``)."""
        return {}

    def evaluation_sweep(self) -> dict[str, dict[int | float, Task]]:
        """Variants of the task to score the trained model on (never trained on), keyed by
        setting and value, e.g. ``{"distance": {64: task, 4096: task}}``. Each setting
        becomes a metric ``accuracy_by_<setting>``."""
        return {}

    def model_metrics(
        self, model: torch.nn.Module, test: TaskData, segment_len: int | None = None
    ) -> dict[str, float]:
        """Application metrics of the trained ``model`` on ``test`` that the evaluation does
        not compute, e.g. ``recommend``'s ``hr@10``; ``segment_len`` is the run's (its
        ``train.segment_len``, else the task's own): a task that reads ``model`` over long
        inputs reads them in segments of that length, as the evaluation does."""
        return {}

    def own_data_bytes(self) -> tuple[int, list[str]]:
        """A lower bound of the bytes of data this task builds from its own parameters, beyond
        ``examples x seq_len`` ids (a generated catalogue, a fact map, synthesised audio), with
        the fields that set it. ``memzoo.train.sizes`` checks it against the machine's memory
        before anything is built, so it must be computed from parameters only (no data)."""
        return 0, []

    def save_artifacts(self, directory: str | Path) -> list[Path]:
        """Write what prediction needs besides the weights (a tokenizer, class names, the
        scaling of a series) into a checkpoint ``directory``; return the files written."""
        return []

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        """Generate ``num_examples`` examples drawing every random number from ``generator``."""
        raise NotImplementedError(f"{type(self).__name__} must implement _generate")


def nested_data_bytes(parts: Iterable[tuple[str, Task]]) -> tuple[int, list[str]]:
    """``Task.own_data_bytes`` of a task made of others (a continual run's phases, a multitask
    run's entries), given as ``(field, task)`` pairs: the sum, with each part's fields shown as
    ``"<field>.x=<value>"`` (e.g. ``task.task_a.num_users=1000``) since they are not the
    composite's own."""
    total, shown = 0, []
    for where, task in parts:
        size, names = task.own_data_bytes()
        total += size
        shown += [
            f"{where}.{n.removeprefix('task.')}={getattr(task, n.removeprefix('task.'), '?')}" for n in names
        ]
    return total, shown


def derive_seq_len(model, parts, whose: str) -> None:
    """Set ``model.seq_len`` (a frozen pydantic model composing tasks) to the longest of the
    task ``parts``' once, in its validator; a ``ValueError`` if the user set another value
    (``whose`` words the rule: "the longer task's")."""
    derived = max(task.seq_len for task in parts)
    if "seq_len" in model.model_fields_set and model.seq_len != derived:
        raise ValueError(
            f"seq_len is derived ({whose}, {derived}); got seq_len={model.seq_len}: leave it unset"
        )
    object.__setattr__(model, "seq_len", derived)  # frozen model: set once, here


def constant_slice(num_examples: int, value: int) -> torch.Tensor:
    """A ``[N]`` slice label that is the same for every example."""
    return torch.full((num_examples,), value, dtype=torch.long)
