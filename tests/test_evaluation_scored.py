"""``evaluate`` reads an ``lm`` model with its head at scored positions only: the metrics equal,
exactly, those of the full ``[B, T, K]`` logits (the path it replaced), for every layer family
and with slices; other heads are read as before."""

from __future__ import annotations

import pytest
import torch

from memzoo import tasks
from memzoo.models import SequenceModel
from memzoo.train.evaluation import evaluate
from memzoo.train.objectives import accumulator_for


def full_logits_metrics(model, data, num_outputs: int, batch_size: int = 256) -> dict:
    """The reference: every position's logits, then the accumulator (targets -100 ignored)."""
    model.eval()
    acc = accumulator_for("lm", num_outputs)
    with torch.no_grad():
        for start in range(0, len(data.inputs), batch_size):
            rows = slice(start, start + batch_size)
            outputs, _ = model(data.inputs[rows])
            acc.update(outputs.float(), data.targets[rows], {k: v[rows] for k, v in data.slices.items()})
    return acc.compute()


@pytest.mark.parametrize("layers", [["attention", "sliding_window"], ["lstm"], ["deltanet", "mlstm"]])
def test_scored_positions_give_exactly_the_full_logits_metrics(layers):
    torch.manual_seed(0)
    task = tasks.build("mqar", vocab_size=64, seq_len=32, num_kv_pairs=4)
    data = task.generate(300, seed=0)  # two batches of 256: the batching is the reference's too
    model = SequenceModel(layers=layers, d_model=32, vocab_size=64)
    metrics = evaluate(model, data, "lm", 64, torch.device("cpu"))
    assert metrics == full_logits_metrics(model, data, 64)
    assert metrics["slices"] and 0 < metrics["scored"] < data.targets.numel()


def test_memorization_metrics_are_unchanged_where_almost_nothing_is_scored():
    torch.manual_seed(1)
    task = tasks.build("memorization", num_facts=64, num_values=8, seq_len=16)
    data = task.generate(40, seed=0)
    k = task.output_vocab_size
    model = SequenceModel(
        layers=["sliding_window"], d_model=16, vocab_size=task.input_vocab_size, num_outputs=k
    )
    assert evaluate(model, data, "lm", k, torch.device("cpu")) == full_logits_metrics(model, data, k)
