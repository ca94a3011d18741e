"""One memory trunk shared by several tasks, with an input embedding and a head per task.

Shape legend: B batch, T time, D d_model, V a task's vocabulary, F its input features,
K its outputs.

Parameters::

    blocks.*            the memory blocks: one set, trained by every task (shared)
    norm.*              the final LayerNorm, shared
    embeds.<label>.*    per task: nn.Embedding(V, D) for token inputs [B, T],
                        nn.Linear(F, D) for real-valued inputs [B, T, F]
    heads.<label>.*     per task: nn.Linear(D, K) for its lm / classify / regress head

Why an embedding per task rather than one embedding of the largest vocabulary: the same
token id means different things in different tasks (``1`` is copy's delimiter and an MQAR
key), a real-valued task needs a linear projection rather than a lookup, and a task's own
embedding tells the shared trunk which task it is reading — without a task token that would
shift every position.

:meth:`MultiHeadModel.view` returns a :class:`TaskView`: a :class:`SequenceModel` made of
the shared trunk and that task's embedding and head (the same modules, no copies). Anything
that takes a ``SequenceModel`` — the training step, ``evaluate``, ``SegmentRunner`` — takes a
view, and training a view trains the shared trunk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from memzoo import layers as layer_registry
from memzoo.errors import ConfigError
from memzoo.models.block import MemoryBlock
from memzoo.models.sequence_model import HEADS, SequenceModel


@dataclass(frozen=True)
class TaskIO:
    """What one task feeds the trunk and reads from it: exactly one of ``vocab_size``
    (token ids) and ``input_dim`` (real features), the head kind and its size."""

    head: str
    num_outputs: int
    vocab_size: int | None = None
    input_dim: int | None = None

    @classmethod
    def of(cls, task) -> TaskIO:
        """The inputs and head of a built task."""
        input_dim = getattr(task, "input_dim", None)
        return cls(
            head=task.head,
            num_outputs=task.output_vocab_size,
            vocab_size=None if input_dim else task.input_vocab_size,
            input_dim=input_dim,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class TaskView(SequenceModel):
    """A ``SequenceModel`` assembled from existing modules, shared with other views.

    ``SequenceModel.__init__`` would build fresh blocks, so this constructor sets the
    modules directly; ``hidden``, ``forward``, ``init_state`` and ``state_size`` are the
    sequence model's own.
    """

    def __init__(
        self,
        *,
        embed: nn.Module,
        blocks: nn.ModuleList,
        norm: nn.Module,
        head: nn.Linear,
        head_kind: str,
        layer_names: list[str],
    ):
        nn.Module.__init__(self)  # the modules exist: do not build new ones
        self.layer_names = list(layer_names)
        self.head_kind = head_kind
        self.embed, self.blocks, self.norm, self.head = embed, blocks, norm, head


class MultiHeadModel(nn.Module):
    """Shared memory blocks with a per-task embedding and head.

    Args:
        layers: registered layer names, one per shared block, e.g. ``["attention", "gru"]``.
        d_model: width of every block.
        tasks: ``{label: TaskIO}`` (or dicts of its fields), in a fixed order.
        layer_options: keyword options per layer name.
        mlp_ratio: MLP width multiplier in each block; 0 drops the MLP.

    ``model(x, task=label)`` is ``model.view(label)(x)``: ``[B, T, K]`` logits for an lm
    head, ``[B, K]`` for classify / regress.
    """

    def __init__(
        self,
        *,
        layers: list[str],
        d_model: int,
        tasks: dict[str, TaskIO | dict[str, Any]],
        layer_options: dict[str, dict[str, Any]] | None = None,
        mlp_ratio: int = 4,
    ):
        super().__init__()
        if not layers:
            raise ConfigError("layers must name at least one memory layer")
        if not tasks:
            raise ConfigError("tasks must name at least one task")
        layer_options = layer_options or {}
        self.task_io = {label: io if isinstance(io, TaskIO) else TaskIO(**io) for label, io in tasks.items()}
        self.layer_names = list(layers)
        self.blocks = nn.ModuleList(
            MemoryBlock(layer_registry.build(name, d_model, **layer_options.get(name, {})), mlp_ratio)
            for name in layers
        )
        self.norm = nn.LayerNorm(d_model)
        self.embeds, self.heads = nn.ModuleDict(), nn.ModuleDict()
        for label, io in self.task_io.items():
            if io.head not in HEADS:
                raise ConfigError(f"task {label!r}: head must be one of {', '.join(HEADS)}; got {io.head!r}")
            if (io.vocab_size is None) == (io.input_dim is None):
                raise ConfigError(f"task {label!r}: set exactly one of vocab_size or input_dim")
            self.embeds[label] = (
                nn.Embedding(io.vocab_size, d_model) if io.vocab_size else nn.Linear(io.input_dim, d_model)
            )
            self.heads[label] = nn.Linear(d_model, io.num_outputs)
        # Plain dict: views reuse registered modules and must not enter the state dict twice.
        self._views = {
            label: TaskView(
                embed=self.embeds[label],
                blocks=self.blocks,
                norm=self.norm,
                head=self.heads[label],
                head_kind=io.head,
                layer_names=self.layer_names,
            )
            for label, io in self.task_io.items()
        }

    @property
    def labels(self) -> list[str]:
        return list(self.task_io)

    def view(self, task: str) -> TaskView:
        """The ``SequenceModel`` of task ``task``: shared trunk, its embedding and head."""
        try:
            return self._views[task]
        except KeyError:
            raise ConfigError(f"no task {task!r} in this model; tasks: {', '.join(self.labels)}") from None

    def forward(self, x: torch.Tensor, task: str, state: list[Any] | None = None):
        """Outputs of task ``task``'s head on ``x`` and the new per-block states."""
        return self.view(task)(x, state)

    def init_state(self, batch_size: int, device=None, dtype=None) -> list[Any]:
        return [block.layer.init_state(batch_size, device, dtype) for block in self.blocks]

    def state_size(self, seq_len: int) -> int:
        """Bytes of memory state one sequence holds after ``seq_len`` tokens (fp32)."""
        return sum(block.layer.state_size(seq_len) for block in self.blocks)

    def num_params(self) -> int:
        """Every parameter once (the trunk is counted once, not once per task)."""
        return sum(p.numel() for p in self.parameters())
