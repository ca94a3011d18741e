"""What a kind of run supplies to the one run lifecycle (:mod:`memzoo.train.lifecycle`).

A recipe knows its model, its data and how to score them; the lifecycle owns everything every
run does (record, seed, budget, divergence, progress, evaluation schedule, selection,
checkpoints, resume, test scoring). The recipes are in :mod:`memzoo.train.recipes`; the run
kinds that map a config onto a recipe are in :mod:`memzoo.train.run_kinds`.

Order of calls, each once unless said::

    prepare()                      load/generate data; may fail before anything is stored
    build_model(device)            after the record is stored
    steps_per_epoch()
    batches(epoch, generator)      every epoch: an iterable of batches
    train_step(batch) -> loss      every batch: forward and backward (gradients accumulate)
    validate() -> metrics          after every epoch: the metrics that select the checkpoint
    test() -> metrics              once, at the end, on the selected weights
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch


class Recipe(abc.ABC):
    """Base class of the run kinds. Subclasses set the attributes and override the methods."""

    #: the train settings the lifecycle runs under (budget, lr, seed, checkpoints)
    tc: Any
    #: record fields
    task_name: str = ""
    layers: list[str]
    record_config: dict[str, Any]
    #: the metric that selects the checkpoint, and whether higher is better
    primary_metric: str = "accuracy"
    higher_is_better: bool = True
    #: stop early once the validation primary metric reaches this (None: never)
    target: float | None = None
    model: torch.nn.Module

    def prepare(self) -> None:
        """Load or generate the data (errors here leave nothing stored); default: nothing."""
        return None

    @abc.abstractmethod
    def build_model(self, device: torch.device) -> torch.nn.Module:
        raise NotImplementedError

    def state_bytes(self) -> int | None:
        """Bytes of memory state one sequence holds at the task's length."""
        return None

    @abc.abstractmethod
    def steps_per_epoch(self) -> int:
        raise NotImplementedError

    @abc.abstractmethod
    def batches(self, epoch: int, generator: torch.Generator) -> Iterable[Any]:
        """One epoch's batches, in the order ``generator`` draws (1-based ``epoch``)."""
        raise NotImplementedError

    @abc.abstractmethod
    def train_step(self, batch: Any) -> torch.Tensor:
        """Forward and backward of one batch; the (global mean) loss."""
        raise NotImplementedError

    def loss_key(self, batch: Any) -> str | None:
        """A label under which the batch's loss is also averaged (multitask: the task)."""
        return None

    def describe_batch(self, batch: Any) -> str:
        """Words that locate a batch in an error message (e.g. `` on task 'copy'``)."""
        return ""

    def curve_extras(self, epoch: int) -> dict[str, Any]:
        """What a curve point records beyond losses and validation metrics."""
        return {}

    @abc.abstractmethod
    def validate(self) -> dict[str, Any]:
        """Metrics of the current model on the validation set."""
        raise NotImplementedError

    @abc.abstractmethod
    def test(self) -> dict[str, Any]:
        """Metrics of the current (selected) model on the test set, and what the task adds
        about it (baselines, per-distance accuracy, application metrics)."""
        raise NotImplementedError

    def checkpoint_meta(self) -> dict[str, Any]:
        """What ``memzoo.load`` needs besides the weights (sizes, head, kind)."""
        return {}

    def save_artifacts(self, directory: Path) -> None:
        """Files that prediction needs beside the weights (tokenizers, class names); default:
        none."""
        return None
