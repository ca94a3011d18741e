"""Connectionist temporal classification (CTC): the loss and greedy decoding of a ``ctc`` head.

Shape legend: B batch, T frames, K = labels + 1 (the blank is one of the K outputs), L labels.

A ``ctc`` head is the ``lm`` head's per-frame logits ``[B, T, K]`` read differently: the model
emits a label or the *blank* at every frame, and the label sequence is what remains after
merging repeated frames and dropping blanks (``a a _ b _ _ b`` -> ``a b b``). The training
target of an utterance is its label sequence, stored left-aligned in a ``[T]`` row padded with
-100 (the convention of :class:`memzoo.tasks.TaskData`: ``targets[n, :L_n]`` are the labels,
the rest -100); every frame of the input counts (padding frames are expected to be blanks).
By convention the blank is the **last** output id, ``K - 1`` (``speech_digits``: 10), so a
training loop finds it from the head's size alone.

>>> logits = torch.full((1, 6, 3), -5.0)
>>> for t, k in enumerate([0, 0, 2, 1, 2, 1]):  # blank is 2: frames say "0 0 _ 1 _ 1"
...     logits[0, t, k] = 5.0
>>> greedy_decode(logits, blank=2)
[[0, 1, 1]]
>>> targets = torch.tensor([[0, 1, 1, -100, -100, -100]])
>>> bool(ctc_loss(logits, targets, blank=2) < 0.1)
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from memzoo.errors import MemzooError
from memzoo.models.targets import IGNORE_INDEX


def label_lengths(targets: torch.Tensor) -> torch.Tensor:
    """``[B]`` number of labels in each row of padded ``targets`` ``[B, T]`` (-100 is padding).

    Raises if a row has a label after its padding starts (labels must be left-aligned)."""
    real = targets != IGNORE_INDEX  # [B, T]
    lengths = real.sum(1)
    positions = torch.arange(targets.shape[1], device=targets.device)
    if bool((real != (positions[None, :] < lengths[:, None])).any()):
        raise MemzooError("CTC targets must hold their labels first, then only -100")
    return lengths


def ctc_loss(logits: torch.Tensor, targets: torch.Tensor, blank: int) -> torch.Tensor:
    """Mean CTC loss per label of per-frame ``logits`` ``[B, T, K]`` against ``targets``
    ``[B, T]`` (labels left-aligned, -100 after them; see the module docstring).

    Wraps :func:`torch.nn.functional.ctc_loss` (``reduction="mean"``: each utterance's loss
    divided by its number of labels, then averaged over the batch) in float32; an utterance
    whose labels cannot be aligned to its frames contributes 0 (``zero_infinity``).
    """
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise MemzooError(
            f"ctc_loss expects logits [B, T, K] and targets [B, T]; got {tuple(logits.shape)} "
            f"and {tuple(targets.shape)}"
        )
    lengths = label_lengths(targets)
    if bool((targets[targets != IGNORE_INDEX] == blank).any()):
        raise MemzooError(f"a CTC target holds the blank id {blank}")
    log_probs = F.log_softmax(logits.float(), dim=-1).transpose(0, 1)  # [T, B, K]
    input_lengths = torch.full((logits.shape[0],), logits.shape[1], dtype=torch.long)
    flat = targets[targets != IGNORE_INDEX]  # [sum L] labels of every row, in order
    return F.ctc_loss(
        log_probs,
        flat.cpu(),
        input_lengths,
        lengths.cpu(),
        blank=blank,
        reduction="mean",
        zero_infinity=True,
    )


def greedy_decode(logits: torch.Tensor, blank: int) -> list[list[int]]:
    """Best-path decoding of ``[B, T, K]`` logits: the most likely output at every frame,
    repeats merged, blanks dropped; one label list per row."""
    best = logits.argmax(-1).cpu()  # [B, T]
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]
    keep &= best != blank
    return [row[mask].tolist() for row, mask in zip(best, keep)]


def targets_to_labels(targets: torch.Tensor) -> list[list[int]]:
    """The label lists of padded CTC ``targets`` ``[B, T]``."""
    return [row[row != IGNORE_INDEX].tolist() for row in targets.cpu()]
