"""The recall frontier (Zoology), at two scales: the ``frontier`` suite (for a GPU or a Ray
cluster) and ``frontier_cpu``. Every short-term layer at four widths on MQAR, so the report's
recall-vs-state-size plot shows where each layer first reaches 0.99 recall."""

from __future__ import annotations

from memzoo.sweep.suites.common import SWEEP_LRS, TaskRun, short_term_layers, sweep
from memzoo.sweep.suites.registry import register_suite
from memzoo.train.config import RunConfig, validate_config

WIDTHS = (32, 64, 128, 256)  # d_model
BLOCKS = 2

# Zoology uses V=8192; V=1024 here keeps the embedding and the head small on a CPU.
FRONTIER = TaskRun(
    task={"name": "mqar", "vocab_size": 1024, "seq_len": 256, "num_kv_pairs": 16},
    train={"num_train": 10_000, "num_test": 1_000, "epochs": 16, "checkpoint": False},
)
FRONTIER_CPU = TaskRun(
    task={"name": "mqar", "vocab_size": 256, "seq_len": 64, "num_kv_pairs": 8},
    train={
        "num_train": 10_000,
        "num_validation": 500,
        "num_test": 1_000,
        "max_steps": 1_000,  # about 3 epochs of batch 32
        "checkpoint": False,
    },
)


def frontier_grid(setting: TaskRun) -> list[RunConfig]:
    """Every short-term layer (2 blocks) at every width of ``WIDTHS`` on ``setting``."""
    return [
        validate_config(
            {
                "task": setting.task,
                "model": {"layers": [layer] * BLOCKS, "d_model": width},
                "train": setting.train,
            }
        )
        for width in WIDTHS
        for layer in short_term_layers()
    ]


@register_suite("frontier")
def frontier() -> list[RunConfig]:
    """Every short-term layer × d_model in (32, 64, 128, 256) × learning rate in SWEEP_LRS on
    MQAR V=1024, L=256, 16 pairs, 16 epochs each.

    Too large for a 2-core CPU: meant for a GPU or a Ray cluster (``memzoo bench --ray``)."""
    return sweep(frontier_grid(FRONTIER), lrs=SWEEP_LRS)


@register_suite("frontier_cpu")
def frontier_cpu() -> list[RunConfig]:
    """Every short-term layer × d_model in (32, 64, 128, 256) × learning rate in SWEEP_LRS on
    MQAR V=256, L=64, 8 pairs, 1,000 steps each: the recall-vs-state frontier on a CPU.

    Every run has the same budget of optimiser steps, whatever its width or the machine's
    load, and three learning rates per cell. Before this, every run had the same wall budget,
    so wide models took few steps and one learning rate fitted some widths only (attention
    0.999 at d=64 but 0.13 at d=128). Not re-measured since (120 runs)."""
    return sweep(frontier_grid(FRONTIER_CPU), lrs=SWEEP_LRS)
