"""The ``smoke`` suite: four tiny runs, for trying executors and the report end to end; it
measures nothing."""

from __future__ import annotations

from memzoo.sweep.suites.common import TaskRun
from memzoo.sweep.suites.registry import register_suite
from memzoo.train.config import RunConfig, validate_config

SMOKE = TaskRun(
    task={"name": "mqar", "vocab_size": 64, "seq_len": 32, "num_kv_pairs": 2},
    train={"num_train": 256, "num_test": 64, "epochs": 2, "batch_size": 32, "checkpoint": False},
)
LAYERS = ("lstm", "gru")
SEEDS = (0, 1)
D_MODEL = 16


@register_suite("smoke")
def smoke() -> list[RunConfig]:
    """One lstm and one gru block (d_model 16) on MQAR V=64, L=32, 2 pairs, two epochs of 256
    examples, two seeds each."""
    return [
        validate_config(
            {
                "task": SMOKE.task,
                "model": {"layers": [layer], "d_model": D_MODEL},
                "train": {**SMOKE.train, "seed": seed},
            }
        )
        for layer in LAYERS
        for seed in SEEDS
    ]
