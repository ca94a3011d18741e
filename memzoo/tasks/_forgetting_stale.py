"""The interference measure of ``forgetting_mqar`` and of ``cross_segment_recall`` with
``rebind``: how often a model answers a query with a value its key held *before* its latest
write (a stale answer), rather than the latest one.

Shape legend: N examples, T ``seq_len``, K ``num_kv_pairs`` (queries per example),
W = T/2 - K writes, V output vocabulary.

Accuracy alone cannot tell a memory that lost a key from one that kept its first binding: a
wrong answer is stale when it equals one of the values the queried key was written with
earlier in the sequence (the task guarantees each rewrite changes the value, so a stale value
is never the right one). ``stale_answer_rate`` is the fraction of the queries whose key was
rewritten (queries with an outdated value to confuse) answered with an outdated value; a memory
that keeps only the first write scores near 1, one where the last write wins near 0. Keys
written once have no stale value and are left out of the rate.
"""

from __future__ import annotations

import torch

from memzoo.models import SegmentRunner
from memzoo.tasks.base import IGNORE_INDEX, TaskData

BATCH_SIZE = 256


def query_predictions(model, data: TaskData, segment_len: int | None) -> torch.Tensor:
    """``LongTensor [N, K]``: the model's arg-max at each example's K scored (query)
    positions, in order, read whole or in ``segment_len`` segments with the state carried;
    eval mode without gradients, the model's training mode restored afterwards."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    runner = SegmentRunner(model, segment_len or data.inputs.shape[1])
    out = []
    for start in range(0, len(data.inputs), BATCH_SIZE):
        rows = slice(start, start + BATCH_SIZE)
        logits, _ = runner.scored_outputs(data.inputs[rows].to(device), data.targets[rows].to(device))
        out.append(logits.argmax(-1).cpu())  # [B, K]
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, 0, dtype=torch.long)


def stale_answers(inputs: torch.Tensor, num_kv_pairs: int, predictions: torch.Tensor) -> tuple[int, int]:
    """``(stale, eligible)``: of the queries whose key has an outdated value (``eligible``),
    how many ``predictions [N, K]`` name one of them. ``inputs [N, T]`` are the task's layout:
    W write pairs ``key value``, then K query pairs ``key latest-value``."""
    writes = inputs.shape[1] // 2 - num_kv_pairs
    w_keys, w_values = inputs[:, 0 : 2 * writes : 2], inputs[:, 1 : 2 * writes : 2]  # [N, W]
    q_keys, q_latest = inputs[:, 2 * writes :: 2], inputs[:, 2 * writes + 1 :: 2]  # [N, K]
    same_key = w_keys[:, None, :] == q_keys[:, :, None]  # [N, K, W]
    outdated = same_key & (w_values[:, None, :] != q_latest[:, :, None])  # the key's old values
    named = outdated & (w_values[:, None, :] == predictions[:, :, None])
    return int(named.any(-1).sum()), int(outdated.any(-1).sum())


def rebind_answers(data: TaskData, num_kv_pairs: int, predictions: torch.Tensor) -> dict[str, float | None]:
    """How ``predictions [N, K]`` answer ``cross_segment_recall`` with ``rebind``:
    ``stale_answer_rate``, of the queries whose key was written again (latest value unlike the
    first), the fraction answered with the key's first value; ``rebound_accuracy`` the fraction
    answered with the new one; ``kept_accuracy``, of the other queries, the fraction answered
    right; ``stale_answer_queries`` the number of rebound queries (None for a rate of none).
    The first ``2K`` input tokens are the pairs ``key first-value``; each query is a scored
    position (its key the input there, its latest value the target), K per example."""
    n, k = data.inputs.shape[0], num_kv_pairs
    first_keys, first_values = data.inputs[:, 0 : 2 * k : 2], data.inputs[:, 1 : 2 * k : 2]  # [N, K]
    scored = data.targets != IGNORE_INDEX  # [N, T], K per row
    q_keys, latest = data.inputs[scored].view(n, k), data.targets[scored].view(n, k)  # [N, K]
    same_key = q_keys[:, :, None] == first_keys[:, None, :]  # [N, K, K], one match per query
    first = (same_key * first_values[:, None, :]).sum(-1)  # [N, K] each query's first value
    rebound, right = first != latest, predictions == latest

    def rate(hits: torch.Tensor, of: torch.Tensor) -> float | None:
        return float((hits & of).sum() / of.sum()) if of.any() else None

    return {
        "stale_answer_rate": rate(predictions == first, rebound),
        "rebound_accuracy": rate(right, rebound),
        "kept_accuracy": rate(right, ~rebound),
        "stale_answer_queries": int(rebound.sum()),
    }
