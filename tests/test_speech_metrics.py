"""Speech metrics and baselines against references: edit distance and WER, DTW (vectorised
== naive, warping invariance), CTC loss and greedy decoding, the CTC metric accumulator."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from memzoo.errors import MemzooError
from memzoo.metrics.speech import (
    CtcAccumulator,
    dtw_distances,
    dtw_naive,
    dtw_nearest_neighbour,
    edit_distance,
    word_error_rate,
)
from memzoo.models.ctc import ctc_loss, greedy_decode, label_lengths, targets_to_labels


def _edit_distance_reference(a: tuple, b: tuple) -> int:
    @functools.cache
    def dist(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(dist(i - 1, j) + 1, dist(i, j - 1) + 1, dist(i - 1, j - 1) + (a[i - 1] != b[j - 1]))

    return dist(len(a), len(b))


def test_edit_distance_matches_the_recursive_definition():
    assert edit_distance([], []) == 0
    assert edit_distance([1, 2, 3], []) == 3 and edit_distance([], [1, 2]) == 2
    assert edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert edit_distance([1, 2, 3], [1, 3]) == 1  # deletion
    assert edit_distance([1, 3], [1, 2, 3]) == 1  # insertion
    assert edit_distance([1, 2, 3], [1, 5, 3]) == 1  # substitution
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = tuple(rng.integers(0, 3, rng.integers(0, 7)).tolist())
        b = tuple(rng.integers(0, 3, rng.integers(0, 7)).tolist())
        assert edit_distance(a, b) == _edit_distance_reference(a, b) == edit_distance(b, a)


def test_word_error_rate_is_total_edits_over_reference_words():
    refs = [["three", "one", "four"], ["one", "five"]]
    hyps = [["three", "four"], ["one", "five", "nine"]]
    assert word_error_rate(refs, hyps) == pytest.approx(2 / 5)
    assert word_error_rate(refs, refs) == 0.0
    assert word_error_rate([[1]], [[2, 2, 2]]) == 3.0  # insertions can push it past 1
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        word_error_rate(refs, hyps[:1])


def test_vectorised_dtw_equals_the_naive_reference():
    rng = np.random.default_rng(1)
    queries = [rng.standard_normal((int(rng.integers(1, 9)), 3)).astype(np.float32) for _ in range(6)]
    templates = [rng.standard_normal((int(rng.integers(1, 9)), 3)).astype(np.float32) for _ in range(7)]
    expected = np.array([[dtw_naive(q, t) for t in templates] for q in queries])
    for chunk_cells in (1, 500, 10**7):  # one query per chunk, a few, all at once
        got = dtw_distances(queries, templates, chunk_cells=chunk_cells).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_dtw_ignores_time_stretching_and_finds_the_nearest_template():
    rng = np.random.default_rng(2)
    words = [rng.standard_normal((6, 4)).astype(np.float32) for _ in range(3)]
    slow = [np.repeat(w, 2, axis=0) for w in words]  # each frame held twice
    distances = dtw_distances(words, slow)  # [3, 3]; cdist's matrix product leaves ~1e-4 of zero
    assert float(distances.diagonal().max()) < 1e-3 < float((distances + 9 * torch.eye(3)).min())
    noisy = [w + 0.05 * rng.standard_normal(w.shape).astype(np.float32) for w in slow]
    assert dtw_nearest_neighbour(noisy, words, [10, 11, 12]).tolist() == [10, 11, 12]
    with pytest.raises(ValueError, match="at least one frame"):
        dtw_distances([words[0][:0]], words)


def _one_hot_logits(paths: list[list[int]], num_outputs: int) -> torch.Tensor:
    logits = torch.full((len(paths), len(paths[0]), num_outputs), -8.0)
    for b, path in enumerate(paths):
        for t, k in enumerate(path):
            logits[b, t, k] = 8.0
    return logits


def test_greedy_decode_merges_repeats_and_drops_blanks():
    blank = 3
    logits = _one_hot_logits(
        [[0, 0, 3, 0, 1, 1, 3, 3], [3, 3, 3, 3, 3, 3, 3, 3], [2, 3, 2, 2, 3, 1, 0, 0]], 4
    )
    assert greedy_decode(logits, blank) == [[0, 0, 1], [], [2, 2, 1, 0]]


def test_ctc_loss_wraps_torch_ctc_loss_on_padded_targets():
    torch.manual_seed(0)
    logits = torch.randn(3, 12, 5, requires_grad=True)
    targets = torch.full((3, 12), -100)
    labels = [[0, 1, 1], [3], [2, 0, 2, 1, 3]]
    for b, row in enumerate(labels):
        targets[b, : len(row)] = torch.tensor(row)
    assert label_lengths(targets).tolist() == [3, 1, 5] and targets_to_labels(targets) == labels
    loss = ctc_loss(logits, targets, blank=4)
    expected = F.ctc_loss(
        F.log_softmax(logits, -1).transpose(0, 1),
        torch.tensor(sum(labels, [])),
        torch.full((3,), 12),
        torch.tensor([3, 1, 5]),
        blank=4,
    )
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert logits.grad is not None and bool(logits.grad.abs().sum() > 0)


def test_ctc_loss_prefers_the_right_transcript_and_rejects_bad_targets():
    logits = _one_hot_logits([[0, 2, 1, 2, 1, 2]], 3)  # says "0 1 1" with blank 2
    right, wrong = torch.full((1, 6), -100), torch.full((1, 6), -100)
    right[0, :3] = torch.tensor([0, 1, 1])
    wrong[0, :2] = torch.tensor([0, 1])
    assert float(ctc_loss(logits, right, blank=2)) < 0.01 < float(ctc_loss(logits, wrong, blank=2))
    gap = torch.full((1, 6), -100)
    gap[0, 0], gap[0, 2] = 1, 1  # a label after padding
    with pytest.raises(MemzooError, match="labels first"):
        ctc_loss(logits, gap, blank=2)
    with pytest.raises(MemzooError, match="blank"):
        ctc_loss(logits, torch.tensor([[2, -100, -100, -100, -100, -100]]), blank=2)
    with pytest.raises(MemzooError, match=r"logits \[B, T, K\]"):
        ctc_loss(logits[0], right, blank=2)


def test_ctc_accumulator_scores_word_errors_overall_and_per_slice():
    blank = 10
    paths = [[3, 10, 1, 10, 4, 4], [5, 5, 10, 9, 10, 10], [7, 10, 7, 10, 7, 10]]
    logits = _one_hot_logits(paths, 11)  # decodes to 3 1 4 / 5 9 / 7 7 7
    targets = torch.full((3, 6), -100)
    for b, row in enumerate([[3, 1, 4], [5, 9, 2], [7, 7]]):
        targets[b, : len(row)] = torch.tensor(row)
    acc = CtcAccumulator(blank)
    acc.update(logits[:2], targets[:2], {"voice": torch.tensor([0, 1])})
    acc.update(logits[2:], targets[2:], {"voice": torch.tensor([1])})
    metrics = acc.compute()
    # errors: 0, 1 deletion, 1 insertion over 3 + 3 + 2 words
    assert metrics["wer"] == pytest.approx(2 / 8) and metrics["accuracy"] == pytest.approx(6 / 8)
    assert metrics["sentence_accuracy"] == pytest.approx(1 / 3) and metrics["words"] == 8
    assert metrics["slices"] == {"voice=0": 0.0, "voice=1": pytest.approx(2 / 5)}
