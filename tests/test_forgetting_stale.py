"""``forgetting_mqar``'s stale-answer rate: a query answered with a value its key held before
its latest write. Checked on the worked example, against oracles that keep the first and the
last write, and read whole or in segments alike."""

from __future__ import annotations

import torch

from memzoo import tasks
from memzoo.models import SequenceModel
from memzoo.tasks._forgetting_stale import query_predictions, stale_answers


def test_the_worked_example():
    inputs = torch.tensor([[4, 9, 3, 13, 4, 14, 3, 13, 4, 14]])  # key 4: 9 then 14; key 3: 13
    assert stale_answers(inputs, 2, torch.tensor([[13, 9]])) == (1, 1)  # 4 answered with 9
    assert stale_answers(inputs, 2, torch.tensor([[13, 14]])) == (0, 1)  # the latest: not stale
    assert stale_answers(inputs, 2, torch.tensor([[9, 5]])) == (0, 1)  # key 3 never held 9


def oracle(inputs: torch.Tensor, num_kv_pairs: int, keep: str) -> torch.Tensor:
    """Answers ``[N, K]`` of a memory that keeps each key's first or last written value."""
    writes = inputs.shape[1] // 2 - num_kv_pairs
    answers = []
    for row in inputs.tolist():
        memory = {}
        for i in range(writes):
            key, value = row[2 * i], row[2 * i + 1]
            if keep == "last" or key not in memory:
                memory[key] = value
        answers.append([memory[row[2 * writes + 2 * j]] for j in range(num_kv_pairs)])
    return torch.tensor(answers)


def test_first_write_memory_is_always_stale_and_last_write_memory_never():
    task = tasks.build("forgetting_mqar", vocab_size=32, seq_len=48, num_kv_pairs=4)
    data = task.generate(200, seed=0)
    first, last = oracle(data.inputs, 4, "first"), oracle(data.inputs, 4, "last")
    stale, eligible = stale_answers(data.inputs, 4, first)
    # a key rewritten a -> b -> a has the right answer as its first value: not stale
    assert eligible > 100 and stale == int((first != last).sum()) > 0.9 * eligible
    assert stale_answers(data.inputs, 4, last) == (0, eligible)
    assert torch.equal(last, data.targets[data.targets != -100].view(200, 4))  # the task's answers


def test_predictions_are_the_same_read_whole_or_in_segments_and_reach_the_metrics():
    torch.manual_seed(0)
    task = tasks.build("forgetting_mqar", vocab_size=32, seq_len=48, num_kv_pairs=4)
    data = task.generate(40, seed=1)
    model = SequenceModel(layers=["lstm", "deltanet"], d_model=16, vocab_size=32)
    whole = query_predictions(model, data, None)
    assert whole.shape == (40, 4) and torch.equal(whole, query_predictions(model, data, 16))
    metrics = task.model_metrics(model, data, segment_len=16)
    stale, eligible = stale_answers(data.inputs, 4, whole)
    assert metrics == {"stale_answer_rate": stale / eligible, "stale_answer_queries": eligible}
