"""Memory tokens (RMT) must carry key-value pairs, bound to their keys, across segments that
a sliding window cannot see, and beyond the distances training showed: cross-segment recall
with content-distinguishable distractors, trained for real (the protocol and the checks are
those of ``test_longterm_learning.py``)."""

from __future__ import annotations

import pytest
from test_longterm_learning import KEY_AGNOSTIC, READ_FIRST, check_recall_beyond_training, train_recall

BEYOND = (96, 128)  # 1.5x and 2x the longest trained distance (64)


@pytest.mark.slow
def test_memory_tokens_bind_pairs_beyond_the_trained_distance():
    """Eight memory tokens (segments of 16) on a 4-token window, trained on distances 0-64
    (at most 4 rewrites of the memory between a pair and its query), recall at 96 and 128
    (6 and 8 rewrites) well above the level of a memory that holds the example's four values
    but not which key each belongs to (0.25): the binding survives the extra rewrites.

    The first epoch reads at distance 0 only, where the query finds its pair inside the
    segment; the memory tokens then learn to carry what that read looks for. Trained on the
    whole range from the start, no budget tried reached binding (up to 1,536 steps, 2 seeds,
    8 or 16 memory tokens, windows of 4-32): 0.07-0.26 with 16 values; 0.12-0.48 with 8
    values (key-agnostic level also 0.25); with two pairs 0.45-0.49, at their key-agnostic
    level of 0.5, which the 0.3 threshold this test had before could not tell from binding.

    Measured (512 steps): seed 0 0.98 at 64, 0.94 at 96, 0.84 at 128; seed 1 0.93, 0.87,
    0.76 (threshold 0.6); at 256 (16 rewrites) binding is lost, 0.25-0.30. Forgetting after
    80 tokens: chance at 96 and 128; reset ablation: 0.05-0.06."""
    cfg, model, metrics = train_recall(
        "memory_tokens",
        {"segment_len": 16, "num_memory": 8},
        "task.distance=0",
        f"task.test_distances={list(BEYOND)}",
        "train.epochs=5",
        READ_FIRST,
    )
    assert 0.6 > 2 * KEY_AGNOSTIC
    check_recall_beyond_training(model, cfg, metrics, threshold=0.6, beyond=BEYOND)
