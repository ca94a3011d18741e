"""Memory tokens (RMT) must carry key-value pairs across segments that a sliding window
cannot see: cross-segment recall with content-distinguishable distractors at 8x the window,
trained for real."""

from __future__ import annotations

import json

import pytest

from memzoo.train import build_config, fit

WINDOW = 4
DISTANCE = 8 * WINDOW  # the tested distance: 32 tokens, two segment writes between pair and query
SEGMENT = 16
RECALL = [
    "task.name=cross_segment_recall",
    "task.vocab_size=32",
    "task.num_kv_pairs=2",
    "task.distractors=separate",
    "task.distractor_vocab_size=16",
    # Training draws the distance from [0, 40]: pairs and queries in one segment (the read
    # can be learned from in-segment attention), up to three segment writes apart.
    "task.distance=0",
    "task.max_distance=40",
    f"task.segment_len={SEGMENT}",
    f"task.test_distances=[{DISTANCE}]",
    "model.d_model=32",
    "train.num_train=8192",
    "train.num_test=256",
    "train.epochs=4",
    "train.batch_size=32",
    "train.lr=3e-3",
    "train.tbptt_segments=3",  # 48 tokens = 3 segments: full backpropagation through time
    "train.checkpoint=false",
]
CHANCE = 1 / 16  # values are 16 tokens


def recall_at_distance(second_layer: str) -> float:
    options = {"sliding_window": {"window": WINDOW}}
    if second_layer == "memory_tokens":
        options["memory_tokens"] = {"segment_len": SEGMENT, "num_memory": 8}
    cfg = build_config(
        overrides=[
            *RECALL,
            f"model.layers=[sliding_window,{second_layer}]",
            f"model.layer_options={json.dumps(options)}",
        ]
    )
    result = fit(cfg)
    assert result.status == "completed"
    return result.metrics["accuracy_by_distance"][str(DISTANCE)]


@pytest.mark.slow
def test_memory_tokens_recall_beyond_the_sliding_window():
    """At distance 32 two 4-token windows reach 7 tokens back: the window-only model can
    only guess. Memory tokens written at the end of the pairs' segment and rewritten at the
    next one carry them to the queries.

    Measured (seed 0, answers hidden in the queries, 2 idle-ish cores): 0.48 against 0.04
    for the window. (With the answers shown, as the task did before, seeds 0-2 gave
    0.65-0.70: about half of that came from answering the second query by elimination.)
    The assertion leaves room for float differences between machines: 0.3 is 5x chance."""
    baseline = recall_at_distance("sliding_window")
    memory = recall_at_distance("memory_tokens")
    assert baseline < 2.5 * CHANCE, baseline
    assert memory > 0.3 and memory > baseline + 0.25, (memory, baseline)
