"""The recommend task: leave-last-out without leaks, generated data with real structure,
HR@k/NDCG@k computed right, CSV interactions, and a model that beats popularity."""

from __future__ import annotations

import math

import pytest
import torch

import memzoo
from memzoo import tasks
from memzoo.apps.recommend import evaluate_recommendations
from memzoo.errors import ConfigError
from memzoo.metrics.ranking import hit_rate_and_ndcg, popularity_scores, ranks

IGNORE = -100
SMALL = dict(num_users=50, num_items=30, num_clusters=3, seq_len=8, min_history=3)


def unpadded(row: list[int], pad: int) -> list[int]:
    return [token for token in row if token != pad]


def test_leave_last_out_never_shows_the_held_out_item_in_training():
    task = tasks.build("recommend", **SMALL)
    sequences, pad = task.sequences(), task.num_catalogue_items
    test = task.test_data()
    assert len(test) == len(sequences) == 50 and test.inputs.shape == (50, 8)
    for n, sequence in enumerate(sequences):
        assert unpadded(test.inputs[n].tolist(), pad) == sequence[:-1][-8:]
        assert test.targets[n].tolist() == [IGNORE] * 7 + [sequence[-1]]  # only the last item scored
    pool = task.training_pool()
    for n, sequence in enumerate(s for s in sequences if len(s) >= 3):
        read = unpadded(pool.inputs[n].tolist(), pad)
        scored = [t for t in pool.targets[n].tolist() if t != IGNORE]
        history = sequence[:-1]  # the last item stays out of training entirely
        assert read == history[:-1][-8:] and scored == history[1:][-8:]
        assert len(read) == len(scored)
        # Position t predicts the item after the one read at t.
        mask = pool.targets[n] != IGNORE
        assert torch.equal(pool.inputs[n][mask][1:], pool.targets[n][mask][:-1])


def test_generated_interactions_are_deterministic_and_structured():
    a, b = tasks.build("recommend", **SMALL), tasks.build("recommend", **SMALL)
    assert a.sequences() == b.sequences()
    assert tasks.build("recommend", **{**SMALL, "data_seed": 1}).sequences() != a.sequences()
    task = tasks.build(
        "recommend", num_users=300, num_items=40, num_clusters=4, follow_prob=1.0, cluster_prob=0.0
    )
    # follow_prob=1: each item has one successor, the next in its cluster's cycle.
    successors: dict[int, set[int]] = {}
    for sequence in task.sequences():
        for current, following in zip(sequence, sequence[1:]):
            successors.setdefault(current, set()).add(following)
    assert all(len(s) == 1 for s in successors.values())
    lengths = [len(s) for s in task.sequences()]
    assert min(lengths) >= task.min_history and max(lengths) <= task.seq_len + 1


def test_split_draws_num_train_from_the_pool_and_caps_the_test_users():
    task = tasks.build("recommend", **SMALL)
    train, test = task.split(num_train=120, num_test=20, seed=0)
    assert train.inputs.shape == (120, 8) and test.inputs.shape == (20, 8)
    again, _ = task.split(num_train=120, num_test=20, seed=0)
    assert torch.equal(train.inputs, again.inputs)
    assert task.input_vocab_size == 31 and task.output_vocab_size == 30  # items + the padding token


def test_ranks_hit_rate_and_ndcg():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.5], [1.0, 1.0, 1.0, 1.0]])
    rank = ranks(scores, torch.tensor([2, 3]))
    assert rank.tolist() == [2, 4]  # ties: the lower index ranks first
    hr, ndcg = hit_rate_and_ndcg(torch.tensor([1, 3, 11]), k=10)
    assert hr == pytest.approx(2 / 3)
    assert ndcg == pytest.approx((1 + 1 / math.log2(4) + 0) / 3)


def test_popularity_counts_only_the_training_part(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("userId,movieId,rating,timestamp\n1,a,5,1\n1,b,4,2\n1,c,3,3\n2,b,5,1\n2,c,1,2\n")
    task = tasks.build("recommend", path=str(path), seq_len=4)
    assert task.sequences() == [[0, 1, 2], [1, 2]] and task.num_catalogue_items == 3
    counts = popularity_scores(task.sequences(), task.num_catalogue_items)
    assert counts.tolist() == [1.0, 2.0, 0.0]  # c is only ever a held-out item


def test_recommend_parameter_errors(tmp_path):
    with pytest.raises(ConfigError, match="num_clusters=9 exceeds num_items=5"):
        tasks.build("recommend", num_items=5, num_clusters=9)
    with pytest.raises(ConfigError, match="follow_prob \\+ cluster_prob must be at most 1"):
        tasks.build("recommend", follow_prob=0.8, cluster_prob=0.3)
    missing = tasks.build("recommend", path=str(tmp_path / "none.csv"))
    with pytest.raises(memzoo.MemzooError, match="none.csv': no such file"):
        missing.sequences()


@pytest.mark.slow
def test_lstm_beats_popularity_on_generated_interactions():
    config = {
        "task": {"name": "recommend"},
        "model": {"layers": ["lstm"], "d_model": 64},
        "train": {
            "epochs": 5,
            "num_train": 1000,
            "num_test": 1000,
            "batch_size": 64,
            "lr": 3e-3,
            "checkpoint": False,
            "target_accuracy": 1.0,
            "seed": 0,
        },
    }
    torch.manual_seed(0)
    result = memzoo.fit(config)
    metrics = evaluate_recommendations(result.model, tasks.build("recommend"))
    # Measured: HR@10 0.75, NDCG@10 0.64 against popularity 0.22 / 0.12 (random: 0.05).
    assert metrics["num_users"] == 1000 and metrics["random_hr@10"] == 0.05
    assert metrics["hr@10"] > metrics["popularity_hr@10"] + 0.2
    assert metrics["ndcg@10"] > metrics["popularity_ndcg@10"]
    # The trainer stores the same figures with the run (for the report's Applications section).
    stored = result.metrics
    assert (
        stored["hr@10"] == pytest.approx(metrics["hr@10"])
        and stored["popularity_hr@10"] == metrics["popularity_hr@10"]
    )
