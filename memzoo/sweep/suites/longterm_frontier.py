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
recall settings and curriculum), plus the overwrite probe: the same recall with ``rebind=2``
(two of the four keys written again, with a new value, halfway between the pairs and the
queries; the latest value answers), for the window alone and each memory at its middle size.
Both writes and the query lie at least half the distance apart, beyond the window from
distance 64 on, so the probe asks a long-term memory to update a binding it holds. (The
earlier probe, ``forgetting_mqar`` with 124 writes in 256 tokens, was answerable from the
window: 98 % of its queries had their latest write within 32 tokens.)
"""

from __future__ import annotations

import copy

from memzoo.sweep.suites.common import SWEEP_LRS, sweep
from memzoo.sweep.suites.longterm import RECALL, WINDOW, longterm_model
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
REBIND = 2  # of the 4 keys: half the queries ask for an updated binding, half for a kept one


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
    with both distractor variants, tested at 2x-16x the window; the overwrite probe (the
    recall with two keys rebound) for the window and each memory at its middle size; three
    learning rates and two seeds per point."""
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
    probe_task = {
        **RECALL.task,
        "distractors": "separate",
        "rebind": REBIND,
        "test_distances": [2 * WINDOW, 8 * WINDOW, SIXTEEN_WINDOWS],
    }
    probe_models = [longterm_model("sliding_window")]
    probe_models += [sized_model(layer, option, sizes[1]) for layer, (option, sizes) in SIZES.items()]
    overwrite = [
        validate_config({"task": probe_task, "model": model, "train": RECALL.train}) for model in probe_models
    ]
    # Learning rates outermost, the longterm suite's own rate first: on 2 CPU cores the sweep
    # takes hours, and a bench stopped part-way (it resumes where it stopped) has then drawn
    # every point of the frontier at one rate before any point at a second one.
    rates = sorted(SWEEP_LRS, key=lambda lr: (lr != RECALL.train["lr"], lr))
    return [cfg for lr in rates for cfg in sweep(recall + overwrite, lrs=(lr,), seeds=SEEDS)]
