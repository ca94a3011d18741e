"""``cross_segment_recall`` with ``rebind``, the overwrite probe: R of the K keys are written
again, with a new value, halfway through the distractors, and every query's answer is its key's
latest value. Checked against an oracle that reads each example as a memory would (a dict
updated by each write), and the stale-answer rate against memories that keep the first and
the last write."""

from __future__ import annotations

import pytest
import torch

from memzoo import tasks
from memzoo.models import SequenceModel
from memzoo.tasks._forgetting_stale import query_predictions, rebind_answers
from memzoo.train import fit

SETTINGS = [
    {"vocab_size": 32, "num_kv_pairs": 4, "rebind": 2, "distance": 40, "segment_len": 16},
    {"vocab_size": 32, "num_kv_pairs": 4, "rebind": 4, "distance": 8, "max_distance": 50, "segment_len": 16},
    {
        "vocab_size": 16,
        "num_kv_pairs": 3,
        "rebind": 1,
        "distance": 9,
        "distractors": "separate",
        "segment_len": 8,
    },
]


def read_as_memory(task, row: list[int], distance: int, keep: str) -> list[int]:
    """The answers of a memory that stores every key-value write it reads (``keep="last"``:
    a later write replaces the value; ``"first"``: it does not), from the layout alone."""
    k, r = task.num_kv_pairs, task.rebind
    writes = [(0, 2 * k), (2 * k + distance // 2, 2 * k + distance // 2 + 2 * r)]  # pairs, rebinds
    memory: dict[int, int] = {}
    for start, end in writes:
        for i in range(start, end, 2):
            if keep == "last" or row[i] not in memory:
                memory[row[i]] = row[i + 1]
    queries = 2 * k + 2 * r + distance
    return [memory[row[queries + 2 * j]] for j in range(k)]


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_answers_are_the_latest_values_and_the_layout_holds(setting):
    task = tasks.build("cross_segment_recall", **setting)
    data = task.generate(300, seed=0)
    k, r, half = task.num_kv_pairs, task.rebind, task.vocab_size // 2
    assert task.seq_len == 4 * k + 2 * r + task.longest_distance == data.inputs.shape[1]
    scored = data.targets != -100
    targets = data.targets[scored].view(300, k)
    for row, distance, answers in zip(
        data.inputs.tolist(), data.slices["distance"].tolist(), targets.tolist()
    ):
        assert read_as_memory(task, row, distance, "last") == answers
        rebind_at = 2 * k + distance // 2
        rebound_keys, new_values = (
            row[rebind_at : rebind_at + 2 * r : 2],
            row[rebind_at + 1 : rebind_at + 2 * r : 2],
        )
        first_keys, first_values = row[0 : 2 * k : 2], row[1 : 2 * k : 2]
        assert len(set(rebound_keys)) == r and set(rebound_keys) <= set(first_keys)
        assert all(half <= v < task.vocab_size for v in new_values)
        assert not set(new_values) & set(first_values)  # a first value is never the latest
        query_at = 2 * k + 2 * r + distance
        assert sorted(row[query_at : query_at + 2 * k : 2]) == sorted(first_keys)  # each key once
        assert not any(row[query_at + 1 : query_at + 2 * k : 2])  # answers hidden
        body = row[2 * k : rebind_at] + row[rebind_at + 2 * r : query_at]
        assert len(body) == distance and not set(body) & set(first_keys)  # no key recurs


def test_rebind_zero_is_the_recall_task_and_bad_settings_are_refused():
    plain = {"vocab_size": 32, "num_kv_pairs": 4, "distance": 20, "segment_len": 16}
    a = tasks.build("cross_segment_recall", **plain).generate(50, seed=3)
    b = tasks.build("cross_segment_recall", **plain, rebind=0).generate(50, seed=3)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    with pytest.raises(ValueError, match="rebind=5 must be <= num_kv_pairs=4"):
        tasks.build("cross_segment_recall", **plain, rebind=5)
    with pytest.raises(ValueError, match="needs 4 keys and 7 values"):
        tasks.build("cross_segment_recall", **{**plain, "vocab_size": 12}, rebind=3)


def _oracle(task, data, keep: str) -> torch.Tensor:
    rows, distances = data.inputs.tolist(), data.slices["distance"].tolist()
    return torch.tensor([read_as_memory(task, row, d, keep) for row, d in zip(rows, distances)])


def test_the_stale_rate_tells_a_first_write_memory_from_a_last_write_one():
    task = tasks.build("cross_segment_recall", **SETTINGS[0])  # rebind 2 of 4 keys
    data = task.generate(100, seed=2)
    first, last = _oracle(task, data, "first"), _oracle(task, data, "last")
    assert rebind_answers(data, 4, first) == {
        "stale_answer_rate": 1.0,
        "rebound_accuracy": 0.0,
        "kept_accuracy": 1.0,  # the keys written once: first and last write agree
        "stale_answer_queries": 200,
    }
    assert rebind_answers(data, 4, last) == {
        "stale_answer_rate": 0.0,
        "rebound_accuracy": 1.0,
        "kept_accuracy": 1.0,
        "stale_answer_queries": 200,
    }
    every = tasks.build("cross_segment_recall", **SETTINGS[1])  # rebind 4: no key kept
    data = every.generate(50, seed=1)
    assert rebind_answers(data, 4, _oracle(every, data, "first"))["kept_accuracy"] is None


def test_the_model_metrics_read_the_queries_in_segments():
    task = tasks.build("cross_segment_recall", **SETTINGS[0])
    data = task.generate(30, seed=4)
    torch.manual_seed(0)
    model = SequenceModel(layers=["sliding_window", "deltanet"], d_model=16, vocab_size=task.input_vocab_size)
    metrics = task.model_metrics(model, data, segment_len=16)
    whole = query_predictions(model, data, None)
    assert torch.equal(whole, query_predictions(model, data, 16))
    assert metrics == rebind_answers(data, 4, whole) and metrics["stale_answer_queries"] == 60
    plain = tasks.build("cross_segment_recall", **{**SETTINGS[0], "rebind": 0})
    assert plain.model_metrics(model, plain.generate(4, seed=0), segment_len=16) == {}


def test_a_delta_rule_memory_learns_that_the_last_write_wins():
    """The probe can be learned: DeltaNet's write replaces the value stored under a key
    (S += beta (v - S k) k^T), and two layers of it answer rebound keys with the new value
    (not the stale first one) and kept keys with theirs."""
    config = {
        "task": {
            "name": "cross_segment_recall",
            "vocab_size": 32,
            "num_kv_pairs": 4,
            "rebind": 2,
            "distance": 8,
            "max_distance": 24,
            "distractors": "separate",
            "segment_len": 64,
        },
        "model": {"layers": ["deltanet", "deltanet"], "d_model": 64},
        "train": {
            "num_train": 4000,
            "num_validation": 256,
            "num_test": 256,
            "max_steps": 600,
            "batch_size": 32,
            "lr": 3e-3,
            "checkpoint": False,
            "seed": 0,
        },
    }
    metrics = fit(config, progress=False).metrics
    assert metrics["rebound_accuracy"] >= 0.9 and metrics["kept_accuracy"] >= 0.9
    assert metrics["stale_answer_rate"] <= 0.05
