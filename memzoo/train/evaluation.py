"""Scoring a trained sequence model on a task's data: the evaluation every recipe uses.

- :func:`evaluate` — metrics of a model on one ``TaskData`` (whole sequences, or segment by
  segment through a ``SegmentRunner``), in eval mode without gradients;
- :func:`task_test_metrics` — the test metrics a run stores: the evaluation of the test set
  plus what the task's hooks add (``memzoo.tasks.base.Task``): facts about the training set,
  model-free baselines fitted on the training set, ``accuracy_by_<setting>`` on the task's
  evaluation sweep, and application metrics of the model (e.g. ``hr@10``).
"""

from __future__ import annotations

from typing import Any

import torch

from memzoo.tasks.base import DataSplits
from memzoo.train.objectives import accumulator_for
from memzoo.train.optim import autocast_for
from memzoo.train.segmented import NON_FINITE, evaluate_segmented, non_finite_rows, with_non_finite  # noqa: F401


def resolve_segment_len(train_cfg, task) -> int | None:
    """``train.segment_len`` if set, else the segment length the task prefers, else None."""
    return train_cfg.segment_len if train_cfg.segment_len is not None else task.preferred_segment_len()


def evaluate(
    model, data, head: str, num_outputs: int, device, batch_size: int = 256, segment_len=None
) -> dict:
    """Metrics of ``model`` on ``data`` (a TaskData), in eval mode without gradients.

    With ``segment_len`` the inputs are read segment by segment (``SegmentRunner``) and only
    the outputs at scored positions are kept. Without it, an ``lm`` model is read as one
    segment, the whole input, for the same reason: its head runs at scored positions only (as
    in training), not over the ``[B, T, K]`` logits of every position, which memory tasks
    mostly do not score (the vocabulary projection, its non-finite check and its arg-max were
    ~80 % of a ``memorization`` run). The logits at scored positions are the same either way,
    so the metrics are too (``tests/test_evaluation_scored.py``)."""
    if segment_len is None and head == "lm" and hasattr(model, "hidden") and data.inputs.shape[1] > 0:
        segment_len = data.inputs.shape[1]
    if segment_len is not None:
        return evaluate_segmented(
            model, data, head, num_outputs, device, segment_len, lambda: autocast_for(device), batch_size
        )
    model.eval()
    acc = accumulator_for(head, num_outputs)
    non_finite = 0
    with torch.no_grad(), autocast_for(device):
        for start in range(0, len(data.inputs), batch_size):
            rows = slice(start, start + batch_size)
            outputs, _ = model(data.inputs[rows].to(device))
            non_finite += non_finite_rows(outputs)
            slices = {k: v[rows] for k, v in data.slices.items()}
            acc.update(outputs.float(), data.targets[rows], slices)
    return with_non_finite(acc.compute(), non_finite)


def evaluation_sweep_metrics(task, model, train_cfg, device) -> dict[str, Any]:
    """``accuracy_by_<setting>``: a dict keyed by the value as a string (``{"64": 0.98}``) for
    each setting of the task's ``evaluation_sweep()``, each variant scored on
    ``train.num_test`` test examples drawn as its ``split`` does; and beside it
    ``state_bytes_by_<setting>``: the bytes of memory state one sequence holds at that
    variant's length (state is reported where accuracy is); read in segments, also
    ``state_bytes_at_boundary_by_<setting>``: the bytes carried across that length's last
    segment boundary (a cache that grows carries more at a longer distance)."""
    out: dict[str, Any] = {}
    num_outputs = model.head.out_features
    for setting, variants in task.evaluation_sweep().items():
        accuracies, state_bytes, at_boundary = {}, {}, {}
        for value, variant in sorted(variants.items()):
            key = f"{value:g}" if isinstance(value, float) else str(value)
            state_bytes[key] = int(model.state_size(variant.seq_len))
            segment_len = resolve_segment_len(train_cfg, variant)
            if segment_len is not None and hasattr(model, "boundary_state_size"):
                at_boundary[key] = int(model.boundary_state_size(segment_len, variant.seq_len))
            _, test = variant.split(0, train_cfg.num_test, seed=train_cfg.seed)
            metrics = evaluate(model, test, variant.head, num_outputs, device, segment_len=segment_len)
            accuracies[key] = float(metrics["accuracy"])
        out[f"accuracy_by_{setting}"] = accuracies
        out[f"state_bytes_by_{setting}"] = state_bytes
        if at_boundary:
            out[f"state_bytes_at_boundary_by_{setting}"] = at_boundary
    return out


def task_test_metrics(task, model, data: DataSplits, train_cfg, device) -> dict[str, Any]:
    """Everything a run stores about ``model`` on ``task``'s test set (see the module)."""
    segment_len = resolve_segment_len(train_cfg, task)
    metrics = evaluate(model, data.test, task.head, model.head.out_features, device, segment_len=segment_len)
    if segment_len is not None and hasattr(model, "boundary_state_size"):
        # the budget of a long-term memory: what crosses from one segment to the next
        seq_len = data.test.inputs.shape[1]
        metrics["state_bytes_at_boundary"] = int(model.boundary_state_size(segment_len, seq_len))
    return {
        **metrics,
        **task.training_set_metrics(data.train),
        **task.baseline_metrics(data.train, data.test),
        **evaluation_sweep_metrics(task, model, train_cfg, device),
        **task.model_metrics(model, data.test, segment_len=segment_len),
    }
