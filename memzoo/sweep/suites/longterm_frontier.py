"""The ``longterm_frontier`` suite: long-term memories compared at equal budgets, under
interference (for a GPU or a Ray cluster: 150+ runs of up to 2,000 steps).

A mechanism is better than another only at the same budget, so each long-term memory runs
at three sizes, and the report draws recall at 16x the window (distance 512) against the
bytes that cross a segment boundary (``state_bytes_at_boundary``: what can carry a pair from
one segment to the next). Both distractor variants of ``cross_segment_recall``: ``separate``
(distractors drawn from their own tokens: a memory may learn to skip them) and ``shared``
(distractors from the keys' and values' tokens: every distractor interferes). Every point is
a cell of three learning rates and two seeds; the report picks the rate on validation.

The same base as the ``longterm`` suite (a 32-token sliding window under each memory, its
recall settings and curriculum), plus the overwrite probe: ``forgetting_mqar`` read in
64-token segments, where keys are re-bound along the sequence and the latest value answers.
"""

from __future__ import annotations

import copy

from memzoo.sweep.suites.common import SWEEP_LRS, sweep
from memzoo.sweep.suites.longterm import RECALL, SEGMENT, WINDOW, longterm_model
from memzoo.sweep.suites.registry import register_suite
from memzoo.train.config import RunConfig, validate_config

SIXTEEN_WINDOWS = 16 * WINDOW  # the distance the frontier is read at
# The option that sets each memory's size, and three sizes around the longterm suite's.
SIZES = {
    "memory_tokens": ("num_memory", (4, 8, 16)),
    "knn": ("capacity", (128, 512, 1024)),  # below, at and above the 512-token distance
    "neural_memory": ("hidden_mult", (1, 2, 4)),  # width of the memory MLP
    "persistent": ("num_slots", (4, 16, 64)),  # parameters, not state: its bytes stay flat
}
VARIANTS = ("separate", "shared")
SEEDS = (0, 1)
OVERWRITE = {
    "task": {"name": "forgetting_mqar", "seq_len": 256, "vocab_size": 64, "num_kv_pairs": 4},
    "train": {
        "num_train": 8000,
        "num_validation": 256,
        "num_test": 256,
        "max_steps": 2000,
        "batch_size": 32,
        "segment_len": SEGMENT,
        "tbptt_segments": 4,
        "checkpoint": False,
    },
}


def sized_model(layer: str, option: str, size: int) -> dict:
    """``longterm_model(layer)`` with ``option=size`` on the memory layer."""
    model = copy.deepcopy(longterm_model(layer))
    model["layer_options"][layer] = {**model["layer_options"][layer], option: size}
    return model


def frontier_models() -> list[dict]:
    """The window alone (the floor), then each memory at each of its sizes."""
    models = [longterm_model("sliding_window")]
    for layer, (option, sizes) in SIZES.items():
        models += [sized_model(layer, option, size) for size in sizes]
    return models


@register_suite("longterm_frontier")
def longterm_frontier() -> list[RunConfig]:
    """Each long-term memory at three sizes (and the window alone), on cross-segment recall
    with both distractor variants, tested at 2x-16x the window; the overwrite probe at each
    memory's middle size; three learning rates and two seeds per point."""
    recall = []
    for variant in VARIANTS:
        task = {
            **RECALL.task,
            "distractors": variant,
            "test_distances": [2 * WINDOW, 8 * WINDOW, SIXTEEN_WINDOWS],
        }
        recall += [
            validate_config({"task": task, "model": model, "train": RECALL.train})
            for model in frontier_models()
        ]
    overwrite = [
        validate_config({**OVERWRITE, "model": sized_model(layer, option, sizes[1])})
        for layer, (option, sizes) in SIZES.items()
    ]
    # Learning rates outermost, the longterm suite's own rate first: on 2 CPU cores the sweep
    # takes hours, and a bench stopped part-way (it resumes where it stopped) has then drawn
    # every point of the frontier at one rate before any point at a second one.
    rates = sorted(SWEEP_LRS, key=lambda lr: (lr != RECALL.train["lr"], lr))
    return [cfg for lr in rates for cfg in sweep(recall + overwrite, lrs=(lr,), seeds=SEEDS)]
