"""Scoring the answer of ``needle_text`` examples: exact match and per-byte accuracy, and
the grid of both over context length x needle depth.

Shape legend: B batch, T ``seq_len``, L answer bytes (each example scores exactly L
positions), K output vocabulary, D d_model.

- **exact match**: the fraction of examples whose L answer bytes are all predicted right
  (argmax at each scored position, teacher forcing: the earlier answer bytes are read as
  given) — the ``example_accuracy`` of ``memzoo.metrics.classification``;
- **byte accuracy**: the fraction of the N * L scored answer bytes predicted right — its
  ``accuracy``.
"""

from __future__ import annotations

import torch

from memzoo.models import SegmentRunner
from memzoo.tasks.base import IGNORE_INDEX, TaskData

BATCH_SIZE = 64


def _answer_logits(model, inputs, targets, segment_len: int | None):
    """``(logits [B, L, K], targets [B, L])`` at the scored positions, read whole or, with
    ``segment_len`` shorter than T, segment by segment carrying the model's state."""
    if segment_len is not None and segment_len < inputs.shape[1]:
        return SegmentRunner(model, segment_len).scored_outputs(inputs, targets)
    hidden, _ = model.hidden(inputs)  # [B, T, D]
    scored = targets != IGNORE_INDEX  # [B, T], L per row
    logits = model.head(hidden[scored])  # [B * L, K]
    return logits.view(len(inputs), -1, logits.shape[-1]), targets[scored].view(len(inputs), -1)


def answer_scores(model, data: TaskData, segment_len: int | None = None) -> dict[str, float]:
    """``{"exact_match", "byte_accuracy"}`` of ``model`` (a ``SequenceModel`` with an ``lm``
    head) on ``data`` (see the module docstring), in eval mode without gradients; the model's
    training mode is restored afterwards."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    exact = correct = total = 0
    with torch.no_grad():
        for start in range(0, len(data), BATCH_SIZE):
            rows = slice(start, start + BATCH_SIZE)
            x, y = data.inputs[rows].to(device), data.targets[rows].to(device)
            logits, wanted = _answer_logits(model, x, y, segment_len)
            hit = (logits.argmax(-1) == wanted) | (wanted == IGNORE_INDEX)  # [B, L]
            exact += int(hit.all(dim=1).sum())
            correct += int((hit & (wanted != IGNORE_INDEX)).sum())
            total += int((wanted != IGNORE_INDEX).sum())
    model.train(was_training)
    return {"exact_match": exact / max(len(data), 1), "byte_accuracy": correct / max(total, 1)}


def depth_key(depth: float) -> str:
    """A depth as a metric key: ``0``, ``0.25``, ``1`` (``f"{depth:g}"``, as the trainer
    writes float keys)."""
    return f"{depth:g}"


def score_grid(model, cells: dict[tuple[int, float], TaskData], segment_len: int | None) -> dict:
    """``{"exact_match_by_length_depth": {"128": {"0": 0.9, ...}, ...},
    "byte_accuracy_by_length_depth": {...}}``: :func:`answer_scores` of every
    ``(length, depth)`` cell, keyed by length then depth as strings."""
    exact: dict[str, dict[str, float]] = {}
    byte: dict[str, dict[str, float]] = {}
    for (length, depth), data in sorted(cells.items()):
        scores = answer_scores(model, data, segment_len)
        exact.setdefault(str(length), {})[depth_key(depth)] = scores["exact_match"]
        byte.setdefault(str(length), {})[depth_key(depth)] = scores["byte_accuracy"]
    return {"exact_match_by_length_depth": exact, "byte_accuracy_by_length_depth": byte}
