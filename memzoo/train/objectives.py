"""What a head is trained on and scored by: loss function and metric accumulator per head.

- ``lm`` (per-token logits) and ``classify`` (final-position logits): cross-entropy over
  scored positions (targets -100 are ignored) and classification metrics;
- ``regress``: mean squared error and MAE/RMSE;
- ``ctc``: the CTC loss of per-frame logits, the blank being the last output
  (``memzoo.models.ctc``), scored by word error rate (``memzoo.metrics.speech``);
- ``multilabel``: per-position logits of independent 0/1 labels, the Bernoulli NLL summed
  over labels and averaged over scored frames, scored by ``nll_per_step``
  (``memzoo.metrics.multilabel``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from memzoo.metrics.classification import IGNORE_INDEX, MetricAccumulator
from memzoo.metrics.multilabel import MultilabelAccumulator, multilabel_loss
from memzoo.metrics.speech import CtcAccumulator
from memzoo.models.ctc import ctc_loss


def training_loss(model, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The loss of ``model`` (a ``SequenceModel``) on one batch.

    For the ``lm`` head the output layer runs only at scored positions (targets != -100):
    memory tasks score a few positions of long sequences, and the vocabulary projection at
    every position would dominate the step time for nothing.
    """
    if model.head_kind == "lm":
        hidden, _ = model.hidden(inputs)  # [B, T, D]
        scored = targets != IGNORE_INDEX  # [B, T]
        logits = model.head(hidden[scored])  # [N_scored, K]
        return F.cross_entropy(logits.float(), targets[scored])
    outputs, _ = model(inputs)
    if model.head_kind == "ctc":
        return ctc_loss(outputs, targets, blank=outputs.shape[-1] - 1)
    if model.head_kind == "multilabel":
        return multilabel_loss(outputs, targets)
    if model.head_kind == "regress":
        return F.mse_loss(outputs.float(), targets.float())
    return F.cross_entropy(outputs.float(), targets, ignore_index=IGNORE_INDEX)


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
    if head == "ctc":
        return CtcAccumulator(blank=num_outputs - 1)
    if head == "multilabel":
        return MultilabelAccumulator()
    return RegressionAccumulator() if head == "regress" else MetricAccumulator(num_outputs)


def primary_metric(head: str) -> tuple[str, bool]:
    """The metric that picks the best checkpoint, and whether higher is better."""
    if head == "ctc":
        return "wer", False
    if head == "multilabel":
        return "nll_per_step", False
    return ("mae", False) if head == "regress" else ("accuracy", True)
