"""Multi-label prediction per time step (the ``multilabel`` head): loss, metrics, baselines.

Shape legend: B batch, T time, K labels (e.g. 88 piano keys), N scored frames.

Targets are float ``[B, T, K]`` of 0/1 labels; a frame that is not scored (padding past the
end of a sequence) holds ``-100`` (``IGNORE_INDEX``) in every label, so a frame is scored
when ``targets[..., 0] != -100``. The model's outputs are logits ``[B, T, K]``, one
independent Bernoulli per label: ``p = sigmoid(logit)``.

- ``nll_per_step``: the negative log-likelihood of a frame, summed over its K labels and
  averaged over scored frames, in nats: ``-mean_frames sum_k [y log p + (1 - y) log(1 - p)]``.
  This is the "log-likelihood per time step" of the polyphonic-music benchmarks
  (Boulanger-Lewandowski et al., 2012), with the sign flipped (lower is better);
- ``frame_accuracy``: ``TP / (TP + FP + FN)`` counted over every label of every scored frame,
  a label predicted on when ``p >= 0.5`` (the frame-level accuracy of Bay et al., 2009, that
  Boulanger-Lewandowski et al. also report); 1.0 when nothing is on and nothing is predicted.

Model-free baselines (probabilities ``[N, K]`` scored with :func:`nll_per_step`):

- :func:`label_frequencies`: each label on with its training frequency, Laplace-smoothed
  ``(count + 1) / (frames + 2)`` so no label has probability 0 or 1;
- :func:`repeat_probabilities`: the previous frame repeated, mixed with those frequencies,
  ``p = w * previous + (1 - w) * frequency``; :func:`fit_repeat_weight` picks ``w`` on training
  frames (the grid value with the lowest training NLL).

>>> targets = torch.tensor([[[1.0, 0.0], [-100.0, -100.0]]])  # one scored frame, one padded
>>> acc = MultilabelAccumulator()
>>> acc.update(torch.zeros(1, 2, 2), targets)  # p = 0.5 for every label
>>> round(acc.compute()["nll_per_step"], 4)  # 2 labels x log 2
1.3863
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from memzoo.models.targets import IGNORE_INDEX

#: the mixing weights :func:`fit_repeat_weight` chooses from
REPEAT_WEIGHTS = np.linspace(0.0, 0.99, 100)
_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] before the log


def scored_frames(targets: torch.Tensor) -> torch.Tensor:
    """Bool mask ``[..., T]`` of the scored frames of multi-label targets ``[..., T, K]``."""
    return targets[..., 0] != IGNORE_INDEX


def multilabel_nll_sum(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Summed Bernoulli NLL (nats) over every label of every scored frame, and the number of
    scored frames. ``logits`` and ``targets`` are ``[B, T, K]``."""
    scored = scored_frames(targets)  # [B, T]
    nll = F.binary_cross_entropy_with_logits(logits[scored].float(), targets[scored].float(), reduction="sum")
    return nll, int(scored.sum())


def multilabel_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The training loss of the ``multilabel`` head: NLL per scored frame (``nll_per_step``)."""
    nll, frames = multilabel_nll_sum(logits, targets)
    return nll / max(frames, 1)


class MultilabelAccumulator:
    """``nll_per_step`` and ``frame_accuracy`` (see the module) accumulated batch by batch."""

    def __init__(self):
        self.nll = 0.0
        self.frames = 0
        self.true_positive = self.false_positive = self.false_negative = 0

    def update(self, logits: torch.Tensor, targets: torch.Tensor, slices=None) -> None:
        """``logits`` and ``targets`` ``[B, T, K]`` (``slices`` are not used)."""
        logits, targets = logits.float().cpu(), targets.cpu()
        nll, frames = multilabel_nll_sum(logits, targets)
        self.nll += float(nll)
        self.frames += frames
        scored = scored_frames(targets)
        on = targets[scored] > 0.5  # [N, K]
        predicted = logits[scored] >= 0  # p >= 0.5
        self.true_positive += int((on & predicted).sum())
        self.false_positive += int((~on & predicted).sum())
        self.false_negative += int((on & ~predicted).sum())

    def compute(self) -> dict:
        errors = self.true_positive + self.false_positive + self.false_negative
        return {
            "nll_per_step": self.nll / max(self.frames, 1),
            "frame_accuracy": self.true_positive / errors if errors else 1.0,
            "scored_frames": self.frames,
        }


def nll_per_step(probs: np.ndarray, frames: np.ndarray) -> float:
    """Mean over frames of the summed Bernoulli NLL (nats) of 0/1 ``frames [N, K]`` under
    ``probs`` (``[N, K]`` or ``[K]``)."""
    p = np.clip(probs, _EPS, 1 - _EPS)
    nll = -(frames * np.log(p) + (1 - frames) * np.log1p(-p)).sum(axis=-1)  # [N]
    return float(nll.mean()) if len(nll) else float("nan")


def label_frequencies(frames: np.ndarray) -> np.ndarray:
    """Laplace-smoothed frequency ``[K]`` of each label in 0/1 ``frames [N, K]``."""
    return (frames.sum(axis=0) + 1.0) / (len(frames) + 2.0)


def repeat_probabilities(previous: np.ndarray, frequencies: np.ndarray, weight: float) -> np.ndarray:
    """``weight * previous + (1 - weight) * frequencies``: ``[N, K]`` from the previous
    frames ``[N, K]`` and label frequencies ``[K]``."""
    return weight * previous + (1.0 - weight) * frequencies


def fit_repeat_weight(previous: np.ndarray, following: np.ndarray, frequencies: np.ndarray) -> float:
    """The weight in :data:`REPEAT_WEIGHTS` whose :func:`repeat_probabilities` give the lowest
    NLL per step on the (training) transitions ``previous [N, K] -> following [N, K]``."""
    scores = [nll_per_step(repeat_probabilities(previous, frequencies, w), following) for w in REPEAT_WEIGHTS]
    return float(REPEAT_WEIGHTS[int(np.argmin(scores))])
