"""Training and evaluation step functions, whole-sequence or through a ``SegmentRunner``.

The trainer calls :func:`make_train_step` once and then ``step(inputs, targets) -> loss``
per batch: forward *and* backward (gradients accumulate in ``.grad``). Whole-sequence
training computes :func:`~memzoo.train.objectives.training_loss` and backpropagates it;
segmented training (``train.segment_len`` set) runs
:meth:`memzoo.models.SegmentRunner.loss_backward`, which backpropagates each truncated-BPTT
window as soon as it is done, so memory is bounded by the segment length, not the input.

The segment length is ``train.segment_len``, or else the task's own ``segment_len`` when the
task has one (a task about segments, such as ``cross_segment_recall``, names the segment
length it is meant to be read in); None means whole sequences.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import torch

from memzoo.errors import ConfigError
from memzoo.models import SegmentRunner, SequenceModel
from memzoo.train.objectives import accumulator_for, training_loss

TrainStep = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def make_train_step(
    model: SequenceModel,
    segment_len: int | None,
    tbptt_segments: int,
    autocast: Callable[[], AbstractContextManager],
    compile: bool = False,
) -> TrainStep:
    """``step(inputs, targets) -> loss``: forward and backward of one batch.

    The returned loss is detached from the graph for the segmented path, attached for the
    whole path (either way only its value is used afterwards). ``compile`` (whole sequences
    only) runs the forward and loss through ``torch.compile``; the backward is compiled with
    it by AOTAutograd. The same numbers as eager up to float rounding.
    """
    if segment_len is not None and model.head_kind == "ctc":
        raise ConfigError("a ctc head aligns a whole utterance: leave train.segment_len unset")
    if segment_len is not None and model.head_kind == "multilabel":
        raise ConfigError("a multilabel head is trained on whole windows: leave train.segment_len unset")
    if compile and segment_len is not None:
        raise ConfigError("train.compile works on whole sequences; leave train.segment_len unset")
    if segment_len is None:
        loss_of = training_loss
        if compile:
            loss_of = torch.compile(training_loss)

        def whole_step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            with autocast():
                loss = loss_of(model, inputs, targets)
            loss.backward()  # a non-finite loss is caught by the caller before the update
            return loss

        return whole_step

    runner = SegmentRunner(model, segment_len, tbptt_segments)

    def segmented_step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return runner.loss_backward(inputs, targets, autocast=autocast)

    return segmented_step


def evaluate_segmented(
    model: SequenceModel,
    data,
    head: str,
    num_outputs: int,
    device,
    segment_len: int,
    autocast: Callable[[], AbstractContextManager],
    batch_size: int = 256,
) -> dict:
    """Metrics of ``model`` on ``data`` (a TaskData) read segment by segment, in eval mode.

    Only the outputs at scored positions are kept (:meth:`SegmentRunner.scored_outputs`),
    so a long input never materialises a ``[B, T, K]`` tensor.
    """
    model.eval()
    runner = SegmentRunner(model, segment_len)
    acc = accumulator_for(head, num_outputs)
    non_finite = 0
    with torch.no_grad(), autocast():
        for start in range(0, len(data.inputs), batch_size):
            rows = slice(start, start + batch_size)
            inputs, targets = data.inputs[rows].to(device), data.targets[rows].to(device)
            outputs, kept = runner.scored_outputs(inputs, targets)
            slices = {k: v[rows] for k, v in data.slices.items()}
            non_finite += non_finite_rows(outputs)
            acc.update(outputs.float(), kept, slices)
    return with_non_finite(acc.compute(), non_finite)


#: the metric that counts examples with non-finite model outputs (absent when none)
NON_FINITE = "non_finite_outputs"


def non_finite_rows(outputs: torch.Tensor) -> int:
    """How many rows (examples) of ``outputs`` hold a NaN or an infinity."""
    return (
        int((~torch.isfinite(outputs.float())).reshape(len(outputs), -1).any(1).sum()) if len(outputs) else 0
    )


def with_non_finite(metrics: dict, count: int) -> dict:
    """``metrics`` plus :data:`NON_FINITE` when ``count`` examples had non-finite outputs (the
    lifecycle then stores the run ``diverged``); unchanged otherwise."""
    return {**metrics, NON_FINITE: count} if count else metrics
