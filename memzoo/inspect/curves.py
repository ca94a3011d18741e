"""Recall curves of a model on probe sequences: one batched forward pass per curve.

Shape legend: N probe sequences, T ``seq_len``, Q queries per sequence, V output vocabulary.

A *model* here is anything that maps ``[B, T]`` token ids to ``(logits [B, T, V], state)``
(a :class:`~memzoo.models.SequenceModel`, a :class:`~memzoo.models.SegmentRunner`, or a
module built by hand); it is run in eval mode without gradients. A point of a curve is
``{"x", "accuracy", "stderr", "n"}`` (``n`` scored queries; ``stderr``: the standard error
of the accuracy over the probe sequences, each sequence's queries averaged first since they
share its pairs — the probes' own sampling error; spread over training seeds is the
report's, across runs).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from memzoo.inspect.probes import (
    ProbeBatch,
    RecallLayout,
    capacity_probe,
    forgetting_probe,
    interference_probe,
    overwrite_probe,
)

LOGIT_BUDGET = 2**26  # floats of logits held at once (256 MB): sets the batch size

# name -> (probe builder, x axis label, what is held fixed)
CURVES: dict[str, tuple[Callable, str, str]] = {
    "forgetting": (forgetting_probe, "tokens since the pair was written", "no pair written after it"),
    "interference": (interference_probe, "pairs written after it", "lag 2K-1 tokens"),
    "capacity": (capacity_probe, "pairs stored", "every key queried once"),
    "overwrite": (overwrite_probe, "pairs between the two writes", "queried right after the re-binding"),
}


def predictions(model, inputs: torch.Tensor, query_pos: torch.Tensor, device=None) -> torch.Tensor:
    """``[N, Q]`` the arg-max token the model predicts at each query position, computed in
    batches so at most :data:`LOGIT_BUDGET` logits are held at once."""
    device = torch.device(device or "cpu")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    out = []
    batch = None
    try:
        with torch.no_grad():
            start = 0
            while start < len(inputs):
                rows = slice(start, start + (batch or 1))
                logits, _ = model(inputs[rows].to(device))  # [b, T, V]
                batch = batch or max(1, LOGIT_BUDGET // (logits.shape[1] * logits.shape[2]))
                pos = query_pos[rows].to(device)
                picked = logits.gather(1, pos[..., None].expand(-1, -1, logits.shape[-1]))  # [b, Q, V]
                out.append(picked.argmax(-1).cpu())
                start = rows.stop
    finally:
        if was_training:
            model.train()
    return torch.cat(out)


def score(batch: ProbeBatch, predicted: torch.Tensor) -> list[dict]:
    """One point per distinct x: the accuracy of ``predicted`` against ``batch.answers``
    (and, for the overwrite probe, the fraction answering the stale value)."""
    points = []
    for x in batch.x.unique().tolist():
        rows = batch.x == x
        hit = (predicted[rows] == batch.answers[rows]).float()  # [n, Q]
        per_sequence = hit.mean(1)  # the Q queries of one sequence share its pairs: not independent
        stderr = per_sequence.std().item() / len(per_sequence) ** 0.5 if len(per_sequence) > 1 else 0.0
        point = {"x": int(x), "accuracy": hit.mean().item(), "n": hit.numel(), "stderr": stderr}
        if batch.stale is not None:
            point["stale"] = (predicted[rows] == batch.stale[rows]).float().mean().item()
        points.append(point)
    return points


def recall_curve(
    model, layout: RecallLayout, name: str, *, samples: int = 128, seed: int = 0, device=None
) -> dict:
    """The ``name`` curve (one of :data:`CURVES`) of ``model`` on fresh probes of ``layout``.

    Returns ``{"name", "x_label", "fixed", "points": [{"x", "accuracy", "stderr", "n"}...]}``;
    the overwrite curve's points also carry ``stale``. Same ``seed`` -> same probes."""
    builder, x_label, fixed = CURVES[name]
    gen = torch.Generator().manual_seed(seed)
    made = builder(layout, samples, gen)
    points = []
    for batch in made if isinstance(made, list) else [made]:
        points += score(batch, predictions(model, batch.inputs, batch.query_pos, device))
    return {"name": name, "x_label": x_label, "fixed": fixed, "points": points}
