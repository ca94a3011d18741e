"""What several suites share: the short-term layers, a task with its training settings
(:class:`TaskRun`) and the sweep dimensions (learning rates and seeds)."""

from __future__ import annotations

from typing import NamedTuple

from memzoo import layers as layer_registry
from memzoo.train.config import RunConfig, validate_config


class TaskRun(NamedTuple):
    """A task and the training settings of its runs, both as the keys of a run config
    (``task`` and ``train``)."""

    task: dict
    train: dict


def short_term_layers() -> list[str]:
    return [n for n in layer_registry.names() if layer_registry.info(n).kind == "short"]


# Zoology sweeps four learning rates per cell; three here (a factor ~3 apart around the
# default) keep the CPU suites affordable. The report picks one per cell on validation.
SWEEP_LRS = (1e-3, 3e-3, 1e-2)


def sweep(configs: list[RunConfig], lrs=SWEEP_LRS, seeds=(0,)) -> list[RunConfig]:
    """Every config at every learning rate and seed (``train.lr``, ``train.seed``): a suite's
    sweep dimensions. The report groups the runs of one config back into a cell, picks the
    learning rate with the best mean validation accuracy and shows mean ± std over seeds."""
    return [
        validate_config(
            {
                **cfg.model_dump(mode="json"),
                "train": {**cfg.train.model_dump(mode="json"), "lr": lr, "seed": seed},
            }
        )
        for cfg in configs
        for lr in lrs
        for seed in seeds
    ]
