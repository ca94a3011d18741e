"""What a head is trained on and scored by: loss function and metric accumulator per head.

- ``lm`` (per-token logits) and ``classify`` (final-position logits): cross-entropy over
  scored positions (targets -100 are ignored) and classification metrics;
- ``regress``: mean squared error and MAE/RMSE.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from memzoo.train.metrics import IGNORE_INDEX, MetricAccumulator


def loss_for(head: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if head == "regress":
        return F.mse_loss(outputs.float(), targets.float())
    return F.cross_entropy(
        outputs.reshape(-1, outputs.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX
    )


class RegressionAccumulator:
    """Mean absolute and root-mean-square error over every output value."""

    def __init__(self):
        self.abs_sum = 0.0
        self.sq_sum = 0.0
        self.count = 0

    def update(self, outputs: torch.Tensor, targets: torch.Tensor, slices=None) -> None:
        diff = outputs.float().cpu() - targets.float().cpu()
        self.abs_sum += float(diff.abs().sum())
        self.sq_sum += float(diff.pow(2).sum())
        self.count += diff.numel()

    def compute(self) -> dict:
        n = max(self.count, 1)
        return {"mae": self.abs_sum / n, "rmse": math.sqrt(self.sq_sum / n)}


def accumulator_for(head: str, num_outputs: int):
    return RegressionAccumulator() if head == "regress" else MetricAccumulator(num_outputs)


def primary_metric(head: str) -> tuple[str, bool]:
    """The metric that picks the best checkpoint, and whether higher is better."""
    return ("mae", False) if head == "regress" else ("accuracy", True)
