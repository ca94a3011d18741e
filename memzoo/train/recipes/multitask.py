"""Several tasks learned at once: one shared trunk, an embedding and a head per task.

A config whose task is ``multitask`` (:mod:`memzoo.train.multitask_spec`) runs this recipe. One
:class:`~memzoo.models.multi_head.MultiHeadModel` is built from the config's ``model``
section; every task trains on ``train.num_train`` examples of its own (the data a single-task
run with the same seed would see), is validated on ``train.num_validation`` and tested on
``train.num_test`` of its own. Each optimiser step is one batch of one task, in the order
``task.sampling`` sets; the learning-rate schedule spans the batches of all tasks.

Metrics (validation per epoch in the curve; test of the selected epoch in ``record.metrics``)::

    accuracy              mean accuracy over the tasks scored by accuracy (lm, classify)
    accuracy/<label>      each task's accuracy; likewise f1/<label>, mae/<label>, ...
    tasks                 (test only) each task's full test metrics, with what its hooks add
                          (baselines, per-distance accuracy, ...)

The selected epoch is the one with the highest mean validation accuracy (the lowest mean
``mae`` if every task is a regression). ``memzoo.load`` returns the ``MultiHeadModel``
(meta ``kind: multitask`` with each task's inputs and head). A multitask run is one process:
it cannot be resumed (``--resume``) or run under ``torchrun``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from memzoo.errors import ConfigError
from memzoo.models.multi_head import MultiHeadModel, TaskIO
from memzoo.train.config import ModelConfig, RunConfig, validate_as
from memzoo.train.evaluation import evaluate, resolve_segment_len, task_test_metrics
from memzoo.train.optim import autocast_for
from memzoo.train.recipe import Recipe
from memzoo.train.segmented import make_train_step


def build_multi_head_model(cfg: RunConfig, subtasks: dict) -> MultiHeadModel:
    """The model a multitask config describes: its trunk, an embedding and head per task."""
    m = cfg.model
    return MultiHeadModel(
        layers=m.layers,
        d_model=m.d_model,
        layer_options=m.layer_options,
        mlp_ratio=m.mlp_ratio,
        tasks={label: TaskIO.of(task) for label, task in subtasks.items()},
    )


def load_multitask(weights: dict[str, torch.Tensor], meta: dict) -> MultiHeadModel:
    """A ``MultiHeadModel`` from a multitask checkpoint's weights and meta (eval mode)."""
    m = validate_as(ModelConfig, meta["config"]["model"])  # not the tasks: their files may be gone
    model = MultiHeadModel(
        layers=m.layers,
        d_model=m.d_model,
        layer_options=m.layer_options,
        mlp_ratio=m.mlp_ratio,
        tasks=meta["tasks"],
    )
    model.load_state_dict(weights)
    model.checkpoint_meta = meta
    return model.eval()


def batch_schedule(
    sizes: dict[str, int], batch_size: int, sampling: str, generator: torch.Generator
) -> list[tuple[str, torch.Tensor]]:
    """One epoch's ``(label, rows)`` batches: every example of every task once, each task's
    rows shuffled; tasks in turn (``round_robin``) or all batches shuffled together
    (``proportional``)."""
    per_task = []
    for label, size in sizes.items():
        order = torch.randperm(size, generator=generator)
        per_task.append([(label, order[i : i + batch_size]) for i in range(0, size, batch_size)])
    if sampling == "round_robin":
        longest = max(len(batches) for batches in per_task)
        return [batches[i] for i in range(longest) for batches in per_task if i < len(batches)]
    flat = [batch for batches in per_task for batch in batches]
    return [flat[i] for i in torch.randperm(len(flat), generator=generator).tolist()]


def flatten_task_metrics(per_task: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Flat ``<metric>/<label>`` scalars, the means of ``accuracy`` and ``mae`` over the tasks
    that have them, and ``tasks``: the per-task dicts."""
    flat: dict[str, Any] = {
        f"{name}/{label}": value
        for label, metrics in per_task.items()
        for name, value in metrics.items()
        if isinstance(value, (int, float))
    }
    for name in ("accuracy", "mae"):
        values = [m[name] for m in per_task.values() if name in m]
        if values:
            flat[name] = sum(values) / len(values)
    return {**flat, "tasks": per_task}


class MultitaskRecipe(Recipe):
    """One shared model trained on every task of a ``multitask`` config."""

    def __init__(self, cfg: RunConfig, *, model: MultiHeadModel | None = None):
        self.cfg, self.tc = cfg, cfg.train
        self.multi = cfg.task.build()
        self.subtasks = self.multi.subtasks
        self.task_name, self.layers = "multitask", list(cfg.model.layers)
        self.record_config = cfg.model_dump(mode="json")
        any_accuracy = any(t.head != "regress" for t in self.subtasks.values())
        self.primary_metric, self.higher_is_better = ("accuracy", True) if any_accuracy else ("mae", False)
        self.target = self.tc.target_accuracy if any_accuracy else None
        self._given_model = model

    def prepare(self) -> None:
        tc = self.tc
        self.data = {
            label: task.splits(tc.num_train, tc.num_validation, tc.num_test, tc.seed)
            for label, task in self.subtasks.items()
        }

    def build_model(self, device: torch.device) -> MultiHeadModel:
        self.device = device
        model = self._given_model
        if model is None:
            model = build_multi_head_model(self.cfg, self.subtasks)
        elif not isinstance(model, MultiHeadModel) or model.task_io != {
            label: TaskIO.of(task) for label, task in self.subtasks.items()
        }:
            raise ConfigError(
                "the given model does not fit this multitask config: it must be a "
                "MultiHeadModel with the same task labels, inputs and heads"
            )
        self.model = model.to(device)
        self._steps = {
            label: make_train_step(
                self.model.view(label),
                resolve_segment_len(self.tc, task),
                self.tc.tbptt_segments,
                lambda: autocast_for(device),
            )
            for label, task in self.subtasks.items()
        }
        return self.model

    def state_bytes(self) -> int:
        return self.model.state_size(self.multi.seq_len)

    def steps_per_epoch(self) -> int:
        return sum(math.ceil(len(parts.train) / self.tc.batch_size) for parts in self.data.values())

    def batches(self, epoch: int, generator: torch.Generator):
        sizes = {label: len(parts.train) for label, parts in self.data.items()}
        return batch_schedule(sizes, self.tc.batch_size, self.multi.sampling, generator)

    def train_step(self, batch) -> torch.Tensor:
        label, rows = batch
        train = self.data[label].train
        return self._steps[label](train.inputs[rows].to(self.device), train.targets[rows].to(self.device))

    def loss_key(self, batch) -> str:
        return batch[0]

    def describe_batch(self, batch) -> str:
        return f" on task {batch[0]!r}"

    def validate(self) -> dict[str, Any]:
        per_task = {}
        for label, task in self.subtasks.items():
            view = self.model.view(label)
            per_task[label] = evaluate(
                view,
                self.data[label].validation,
                task.head,
                view.head.out_features,
                self.device,
                segment_len=resolve_segment_len(self.tc, task),
            )
        return flatten_task_metrics(per_task)

    def test(self) -> dict[str, Any]:
        per_task = {
            label: task_test_metrics(task, self.model.view(label), self.data[label], self.tc, self.device)
            for label, task in self.subtasks.items()
        }
        return flatten_task_metrics(per_task)

    def checkpoint_meta(self) -> dict[str, Any]:
        return {
            "kind": "multitask",
            "tasks": {label: io.to_dict() for label, io in self.model.task_io.items()},
            "head": "multi",
        }

    def save_artifacts(self, directory: Path) -> None:
        for label, task in self.subtasks.items():  # e.g. a text task's tokenizer, a folder per task
            task.save_artifacts(Path(directory) / "tasks" / label)
