"""Named benchmark suites: functions returning the run configs of a sweep.

>>> "quick" in suite_names()
True
"""

from __future__ import annotations

from collections.abc import Callable

from memzoo import layers as layer_registry
from memzoo.errors import ConfigError
from memzoo.train.config import RunConfig, validate_config

_SUITES: dict[str, Callable[[], list[RunConfig]]] = {}


def register_suite(name: str):
    def decorator(fn: Callable[[], list[RunConfig]]):
        _SUITES[name] = fn
        return fn

    return decorator


def suite_names() -> list[str]:
    return sorted(_SUITES)


def suite_configs(name: str) -> list[RunConfig]:
    """The validated configs of suite ``name``; a clear error for an unknown name."""
    if name not in _SUITES:
        raise ConfigError(f"unknown suite {name!r}; available suites: {', '.join(suite_names())}")
    return _SUITES[name]()


def short_term_layers() -> list[str]:
    return [n for n in layer_registry.names() if layer_registry.info(n).kind == "short"]


# Zoology's basic setting: 10k training and 1k test examples.
QUICK_TASKS = [
    {"name": "mqar", "vocab_size": 256, "seq_len": 64, "num_kv_pairs": 4},
    {"name": "mqar", "vocab_size": 256, "seq_len": 128, "num_kv_pairs": 8},
    {"name": "selective_copy"},
]
QUICK_TRAIN = {"num_train": 10_000, "num_test": 1_000, "epochs": 8, "batch_size": 64, "lr": 3e-3}


@register_suite("quick")
def quick() -> list[RunConfig]:
    """Every short-term layer, d_model 64, 2 blocks, on two MQAR settings and selective copy."""
    return [
        validate_config(
            {"task": task, "model": {"layers": [layer, layer], "d_model": 64}, "train": QUICK_TRAIN}
        )
        for task in QUICK_TASKS
        for layer in short_term_layers()
    ]


@register_suite("smoke")
def smoke() -> list[RunConfig]:
    """Four tiny runs (seconds each): for trying executors and the report end to end."""
    task = {"name": "mqar", "vocab_size": 64, "seq_len": 32, "num_kv_pairs": 2}
    train = {"num_train": 256, "num_test": 64, "epochs": 2, "batch_size": 32, "checkpoint": False}
    return [
        validate_config({"task": task, "model": {"layers": [layer], "d_model": 16}, "train": {**train, "seed": seed}})
        for layer in ("lstm", "gru")
        for seed in (0, 1)
    ]
