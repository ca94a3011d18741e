"""One task, one ``SequenceModel``: the recipe of ``memzoo.fit`` for every registered task.

Plug-ins of this recipe, chosen by the config:

- ``train.curriculum``: earlier epochs train on easier versions of the task
  (:mod:`memzoo.train.curriculum`);
- ``train.segment_len`` (or the task's preferred segment length): segment-by-segment reading
  with truncated backpropagation (:mod:`memzoo.train.segmented`);
- under ``torchrun``: data-parallel steps with DDP (:mod:`memzoo.train.distributed`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from memzoo.errors import ConfigError, MemzooError
from memzoo.models import SequenceModel
from memzoo.models.recurrent_memory import RecurrentMemoryModel
from memzoo.train.config import ModelConfig, RunConfig
from memzoo.train.curriculum import Curriculum
from memzoo.train.distributed import Distributed, make_ddp_train_step
from memzoo.train.evaluation import evaluate, resolve_segment_len, task_test_metrics
from memzoo.train.objectives import primary_metric
from memzoo.train.optim import autocast_for
from memzoo.train.recipe import Recipe
from memzoo.train.segmented import make_train_step


def build_model(config: RunConfig, task) -> SequenceModel:
    """The model a config describes, sized for ``task``'s vocabularies and head: a
    ``SequenceModel``, or with ``model.rmt`` a ``RecurrentMemoryModel`` reading segments of
    :func:`rmt_segment_len` tokens."""
    return model_from_section(
        config.model,
        vocab_size=None if task.input_dim else task.input_vocab_size,
        input_dim=task.input_dim,
        head=task.head,
        num_outputs=task.output_vocab_size,
        rmt_segment_len=rmt_segment_len(config, task) if config.model.rmt is not None else None,
    )


def model_from_section(
    m: ModelConfig, *, vocab_size, input_dim, head: str, num_outputs: int, rmt_segment_len: int | None
) -> SequenceModel:
    """The model of a validated ``model`` section with the given sizes (what ``build_model``
    and ``memzoo.load`` share); ``rmt_segment_len`` is used only with ``m.rmt``."""
    kwargs = {
        "layers": m.layers,
        "d_model": m.d_model,
        "vocab_size": vocab_size,
        "input_dim": input_dim,
        "head": head,
        "num_outputs": num_outputs,
        "layer_options": m.layer_options,
        "mlp_ratio": m.mlp_ratio,
    }
    if m.rmt is None:
        return SequenceModel(**kwargs, reset_long_term_memory=m.reset_long_term_memory)
    return RecurrentMemoryModel(segment_len=rmt_segment_len, num_memory=m.rmt.num_memory, **kwargs)


def rmt_segment_len(config: RunConfig, task) -> int:
    """The segment length of an RMT run (``model.rmt`` set): ``model.rmt.segment_len``, else
    the length the run reads in (``train.segment_len``, else the task's own). Both set, they
    must agree; neither set is refused (``ConfigError`` naming the fields)."""
    own = config.model.rmt.segment_len
    reads = resolve_segment_len(config.train, task)
    where = "train.segment_len" if config.train.segment_len is not None else "task.segment_len"
    if own is None and reads is None:
        raise ConfigError(
            f"model.rmt needs a segment length: set model.rmt.segment_len or train.segment_len "
            f"(task {task.name!r} has no segments of its own)"
        )
    if own is not None and reads is not None and own != reads:
        raise ConfigError(
            f"model.rmt.segment_len={own} differs from {where}={reads} (RMT writes its memory "
            "every model.rmt.segment_len tokens, the run cuts its inputs at the other): leave "
            "model.rmt.segment_len unset or make them equal"
        )
    return own if own is not None else reads


def check_fits(model: SequenceModel, task) -> SequenceModel:
    """``model`` if it can be trained on ``task`` (inputs, head kind, enough outputs)."""
    if model.head_kind != task.head:
        raise ConfigError(
            f"the given model has a {model.head_kind!r} head; task {task.name!r} needs {task.head!r}"
        )
    embed = model.embed
    fits_inputs = (
        getattr(embed, "in_features", None) == task.input_dim
        if task.input_dim
        else getattr(embed, "num_embeddings", 0) >= task.input_vocab_size
    )
    if not fits_inputs or model.head.out_features < task.output_vocab_size:
        raise ConfigError(
            f"the given model does not fit task {task.name!r}: it needs "
            f"{task.input_dim or task.input_vocab_size} inputs and {task.output_vocab_size} outputs"
        )
    return model


def check_classes_to_learn(task, targets: torch.Tensor) -> None:
    """A classifier whose training part holds one class learns nothing to compare: refuse it
    (a tiny file, or an unlucky split of one) before a row is written."""
    if task.head != "classify" or targets.dim() != 1 or targets.is_floating_point():
        return
    present = torch.unique(targets)
    if len(present) < 2:
        where = getattr(task, "path", None) or f"task {getattr(task, 'name', type(task).__name__)!r}"
        raise MemzooError(
            f"{where}: the training part holds only one class (class id "
            f"{int(present[0]) if len(present) else '-'}); a classifier needs at least 2 classes to "
            "learn: add rows, or change task.split_seed"
        )


class SingleTaskRecipe(Recipe):
    """Train ``cfg.model`` on ``cfg.task`` (or go on training ``model``, e.g. continual)."""

    def __init__(
        self, cfg: RunConfig, *, model: SequenceModel | None = None, dctx: Distributed | None = None
    ):
        self.cfg, self.tc = cfg, cfg.train
        self.task = cfg.task.build()
        self.task_name, self.layers = cfg.task.name, list(cfg.model.layers)
        self.record_config = cfg.model_dump(mode="json")
        self.primary_metric, self.higher_is_better = primary_metric(self.task.head)
        self.target = self.tc.target_accuracy if self.higher_is_better else None
        self._given_model, self.dctx = model, dctx or Distributed()

    def prepare(self) -> None:
        tc = self.tc
        self.data = self.task.splits(tc.num_train, tc.num_validation, tc.num_test, tc.seed)
        check_classes_to_learn(self.task, self.data.train.targets)
        if self.cfg.model.rmt is not None and self._given_model is None:
            rmt_segment_len(self.cfg, self.task)  # a mismatch is refused before a record is stored
        self.curriculum = Curriculum(self.cfg, self.task, self.data.train) if tc.curriculum else None
        self.segment_len = resolve_segment_len(tc, self.task)

    def build_model(self, device: torch.device) -> SequenceModel:
        self.device = device
        given = self._given_model
        model = build_model(self.cfg, self.task) if given is None else check_fits(given, self.task)
        self.model = model.to(device)

        def autocast():
            return autocast_for(device)

        if self.dctx.enabled:
            if self.tc.compile:
                raise ConfigError("train.compile is not supported under torchrun; train in one process")
            self._step = make_ddp_train_step(
                self.model, self.dctx, self.task.head, self.segment_len, autocast
            )
        else:
            self._step = make_train_step(
                self.model, self.segment_len, self.tc.tbptt_segments, autocast, compile=self.tc.compile
            )
        return self.model

    def state_bytes(self) -> int:
        return self.model.state_size(self.task.seq_len)

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.data.train) / self.tc.batch_size)

    def batches(self, epoch: int, generator: torch.Generator):
        data = self.data.train if self.curriculum is None else self.curriculum.data_for(epoch)
        order = torch.randperm(len(data), generator=generator)
        for first in range(0, len(data), self.tc.batch_size):
            rows = order[first : first + self.tc.batch_size]  # under DDP the step takes its shard
            yield data.inputs[rows], data.targets[rows]

    def train_step(self, batch) -> torch.Tensor:
        inputs, targets = batch
        return self._step(inputs.to(self.device), targets.to(self.device))

    def curve_extras(self, epoch: int) -> dict[str, Any]:
        return self.curriculum.point(epoch) if self.curriculum is not None else {}

    def validate(self) -> dict[str, Any]:
        num_outputs = self.model.head.out_features
        return evaluate(
            self.model,
            self.data.validation,
            self.task.head,
            num_outputs,
            self.device,
            segment_len=self.segment_len,
        )

    def test(self) -> dict[str, Any]:
        return task_test_metrics(self.task, self.model, self.data, self.tc, self.device)

    def checkpoint_meta(self) -> dict[str, Any]:
        task = self.task
        return {
            "input_dim": task.input_dim,
            "input_vocab_size": None if task.input_dim else task.input_vocab_size,
            "output_vocab_size": task.output_vocab_size,
            "head": task.head,
        }

    def save_artifacts(self, directory: Path) -> None:
        self.task.save_artifacts(directory)
