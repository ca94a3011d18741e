"""Evaluation metrics over scored positions (targets != -100).

- ``accuracy``: token accuracy over every scored position;
- ``example_accuracy``: fraction of examples whose scored positions are all correct;
- ``precision`` / ``recall`` / ``f1``: macro averages over the classes that occur among the
  targets or the predictions (a class never predicted has precision 0);
- ``slices``: token accuracy per slice label value, e.g. ``{"num_kv_pairs=4": 0.97}``.
"""

from __future__ import annotations

import torch

from memzoo.models.targets import IGNORE_INDEX


class MetricAccumulator:
    """Accumulates counts batch by batch; ``compute()`` returns the metrics dict."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.true_positive = torch.zeros(num_classes, dtype=torch.long)
        self.predicted = torch.zeros(num_classes, dtype=torch.long)
        self.actual = torch.zeros(num_classes, dtype=torch.long)
        self.examples = 0
        self.examples_correct = 0
        self.slice_counts: dict[str, list[int]] = {}  # "name=value" -> [correct, total]

    def update(self, logits: torch.Tensor, targets: torch.Tensor, slices=None) -> None:
        """``logits`` ``[B, T, K]`` with ``targets`` ``[B, T]``, or ``[B, K]`` with ``[B]``."""
        preds = logits.argmax(-1).cpu()
        targets = targets.cpu()
        if targets.dim() == 1:
            preds, targets = preds[:, None], targets[:, None]
        scored = targets != IGNORE_INDEX  # [B, T]
        correct = (preds == targets) & scored
        t, p = targets[scored], preds[scored]
        k = self.num_classes
        self.true_positive += torch.bincount(t[p == t], minlength=k)[:k]
        self.predicted += torch.bincount(p.clamp(0, k - 1), minlength=k)[:k]
        self.actual += torch.bincount(t, minlength=k)[:k]
        has_scored = scored.any(1)
        self.examples += int(has_scored.sum())
        self.examples_correct += int(((correct == scored).all(1) & has_scored).sum())
        for name, labels in (slices or {}).items():
            per_example_correct = correct.sum(1)
            per_example_total = scored.sum(1)
            for value in labels.unique().tolist():
                rows = labels.cpu() == value
                counts = self.slice_counts.setdefault(f"{name}={value}", [0, 0])
                counts[0] += int(per_example_correct[rows].sum())
                counts[1] += int(per_example_total[rows].sum())

    def compute(self) -> dict:
        total = int(self.actual.sum())
        present = (self.actual > 0) | (self.predicted > 0)
        tp = self.true_positive[present].double()
        precision = tp / self.predicted[present].double().clamp_min(1)
        recall = tp / self.actual[present].double().clamp_min(1)
        f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
        n = max(int(present.sum()), 1)
        return {
            "accuracy": float(self.true_positive.sum()) / max(total, 1),
            "example_accuracy": self.examples_correct / max(self.examples, 1),
            "precision": float(precision.sum()) / n,
            "recall": float(recall.sum()) / n,
            "f1": float(f1.sum()) / n,
            "scored": total,
            "slices": {
                key: correct / max(count, 1) for key, (correct, count) in sorted(self.slice_counts.items())
            },
        }
