"""Run a sequence model over an input of any length, one segment at a time.

Shape legend: B batch, T input length, L ``segment_len``, D d_model, K head outputs,
F input features, S most scored positions of one row, N scored positions of a batch.

A :class:`~memzoo.models.SequenceModel` threads its layers' states, so running it segment by
segment with the state carried over gives the same outputs as running it whole (the memory
contract). The runner uses that to bound what one step holds in memory:

- **Truncated backpropagation through time.** Segments are grouped into windows of
  ``tbptt_segments``; the loss of a window is backpropagated as soon as the window is done,
  which frees its activations, and the state is cut from the graph
  (:func:`memzoo.layers.detach_state`) before the next window. Gradients flow through the
  carried state inside a window, not across windows. A window covering the whole input gives
  exactly the gradients of full backpropagation.
- **No graph where nothing is scored.** A window without scored positions runs under
  ``torch.no_grad``: its loss is zero and its outputs reach later windows only through the
  detached state, so building its graph would buy nothing.
- **The head only at scored positions** (``lm`` head), as in
  :func:`memzoo.train.objectives.training_loss`: a memory task scores a few positions of a
  long input.

Peak memory is then one window's activations plus the carried state: bounded by the
segment length for layers whose state is (O(1) or O(window); a KV cache, O(T), still grows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.nn.functional as F

from memzoo.errors import ConfigError
from memzoo.layers.base import detach_state
from memzoo.models.sequence_model import SequenceModel
from memzoo.models.targets import IGNORE_INDEX

Autocast = Callable[[], AbstractContextManager]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"SegmentRunner: {name} must be an integer >= 1, got {value!r}")
    return value


def segment_bounds(length: int, segment_len: int) -> list[tuple[int, int]]:
    """Half-open ``(start, end)`` bounds of consecutive segments; the last may be shorter.

    >>> segment_bounds(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    """
    return [(a, min(a + segment_len, length)) for a in range(0, length, segment_len)]


class SegmentRunner:
    """Runs ``model`` over inputs ``[B, T]`` (token ids) or ``[B, T, F]`` in segments of
    ``segment_len`` tokens (the last one may be shorter), carrying the state.

    Args:
        model: a :class:`SequenceModel`, any head.
        segment_len: L, tokens per segment (>= 1).
        tbptt_segments: segments per truncated-backpropagation window (>= 1); the state is
            detached between windows.

    Methods:
        ``forward(inputs, state=None) -> (outputs, state)``: exactly what ``model`` returns
        on the whole input (``lm``: ``[B, T, K]``; other heads ``[B, K]``).
        ``scored_outputs(inputs, targets) -> (outputs, targets)``: outputs at scored
        positions only, in a compact per-row layout (see there) — the inference method.
        ``loss_backward(inputs, targets) -> loss``: the mean loss over scored positions,
        backpropagated window by window (gradients accumulate in ``.grad``).
    """

    def __init__(self, model: SequenceModel, segment_len: int, tbptt_segments: int = 1):
        if not isinstance(model, SequenceModel):
            raise ConfigError(f"SegmentRunner needs a SequenceModel, got {type(model).__name__}")
        self.model = model
        self.segment_len = _positive_int("segment_len", segment_len)
        self.tbptt_segments = _positive_int("tbptt_segments", tbptt_segments)

    # --- segmentation -----------------------------------------------------------------

    def segments(self, length: int) -> list[tuple[int, int]]:
        """``[(start, end), ...]`` of the segments of an input of ``length`` tokens."""
        return segment_bounds(length, self.segment_len)

    def windows(self, length: int) -> Iterator[list[tuple[int, int]]]:
        """The segments grouped into truncated-backpropagation windows."""
        segs = self.segments(length)
        for i in range(0, len(segs), self.tbptt_segments):
            yield segs[i : i + self.tbptt_segments]

    def _check(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> None:
        if inputs.dim() not in (2, 3) or inputs.shape[1] == 0:
            raise ConfigError(
                f"SegmentRunner: inputs must be [batch, time] or [batch, time, features] with "
                f"time >= 1, got {list(inputs.shape)}"
            )
        if targets is not None and self.model.head_kind == "lm":
            if targets.shape != inputs.shape[:2]:
                raise ConfigError(
                    f"SegmentRunner: lm targets must be [batch, time] = {list(inputs.shape[:2])}, "
                    f"got {list(targets.shape)}"
                )

    def _carried(self, state: list[Any] | None) -> list[Any] | None:
        """The state the next segment starts from: ``state``, except that a model built with
        ``reset_long_term_memory`` (an ablation) starts its long-term layers afresh at every
        segment, so nothing they hold crosses a segment boundary."""
        if state is None or not getattr(self.model, "reset_long_term_memory", False):
            return state
        return [s if carried else None for carried, s in zip(self.model.carried_blocks(), state)]

    # --- inference --------------------------------------------------------------------

    def forward(self, inputs: torch.Tensor, state: list[Any] | None = None):
        """Outputs and final state of the model on the whole input, computed segment by
        segment (equal to ``model(inputs, state)`` for layers meeting the contract)."""
        self._check(inputs)
        outputs = []
        for a, b in self.segments(inputs.shape[1]):
            out, state = self.model(inputs[:, a:b], self._carried(state))
            outputs.append(out)
        if self.model.head_kind == "lm":
            return torch.cat(outputs, dim=1), state  # [B, T, K]
        return outputs[-1], state  # [B, K]: the final position's output

    __call__ = forward

    def scored_outputs(self, inputs: torch.Tensor, targets: torch.Tensor):
        """Outputs at scored positions, never the ``[B, T, K]`` tensor of every position.

        ``lm`` head: returns ``(logits [B, S, K], targets [B, S])`` where row b holds its
        scored positions in order and is padded with ``-100`` targets (S = the most scored
        positions of any row), so a metric accumulator sees each example's scored tokens
        and nothing else. Other heads: ``(outputs [B, K], targets)`` as the model returns.
        Runs without building a graph (call it under ``torch.no_grad`` or not).
        """
        self._check(inputs, targets)
        model = self.model
        state = None
        with torch.no_grad():
            if model.head_kind != "lm":
                out, _ = self.forward(inputs)
                return out, targets
            scored = targets != IGNORE_INDEX  # [B, T]
            rank = scored.long().cumsum(dim=1) - 1  # [B, T] slot of each scored position
            width = int(scored.sum(dim=1).max()) if scored.numel() else 0
            logits = None
            compact = torch.full(
                (inputs.shape[0], width), IGNORE_INDEX, dtype=targets.dtype, device=targets.device
            )
            for a, b in self.segments(inputs.shape[1]):
                hidden, state = model.hidden(inputs[:, a:b], self._carried(state))  # [B, l, D]
                rows, cols = scored[:, a:b].nonzero(as_tuple=True)  # N in this segment
                if rows.numel() == 0:
                    continue
                seg_logits = model.head(hidden[rows, cols])  # [N, K]
                if logits is None:
                    logits = seg_logits.new_zeros(inputs.shape[0], width, seg_logits.shape[-1])
                slots = rank[rows, cols + a]
                logits[rows, slots] = seg_logits
                compact[rows, slots] = targets[rows, cols + a]
            if logits is None:  # nothing scored anywhere
                logits = torch.zeros(inputs.shape[0], 0, model.head.out_features, device=inputs.device)
        return logits, compact

    # --- training ---------------------------------------------------------------------

    def loss_backward(
        self,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        *,
        autocast: Autocast = nullcontext,
        backward: bool = True,
    ) -> torch.Tensor:
        """Mean loss over the scored positions of the whole input (a detached scalar),
        backpropagated window by window when ``backward``.

        The loss is the one of :func:`memzoo.train.objectives.training_loss` on the whole
        input: cross-entropy over scored positions (``lm``), or on the final output
        (``classify``; MSE for ``regress``). Each window backpropagates its share (its summed
        loss divided by the number of scored positions of the whole batch), so the
        accumulated gradients are those of the whole-input loss, truncated at window borders.
        ``autocast`` wraps each window's forward (not the backward).
        """
        self._check(inputs, targets)
        model = self.model
        lm = model.head_kind == "lm"
        scored = targets != IGNORE_INDEX if lm else None  # [B, T]
        total = int(scored.sum()) if lm else 1
        windows = list(self.windows(inputs.shape[1]))
        state, loss_sum = None, None
        for w, window in enumerate(windows):
            start, end = window[0][0], window[-1][1]
            last = w == len(windows) - 1
            has_loss = bool(scored[:, start:end].any()) if lm else last
            needs_grad = has_loss and torch.is_grad_enabled()
            with torch.set_grad_enabled(needs_grad), autocast():
                window_loss = None
                for a, b in window:
                    hidden, state = model.hidden(inputs[:, a:b], self._carried(state))  # [B, l, D]
                    part = self._segment_loss(hidden, targets, scored, a, b, last and b == end)
                    if part is not None:
                        window_loss = part if window_loss is None else window_loss + part
            if window_loss is not None:
                window_loss = window_loss / max(total, 1)
                if backward and needs_grad:
                    window_loss.backward()
                value = window_loss.detach()
                loss_sum = value if loss_sum is None else loss_sum + value
            state = detach_state(state)
        if loss_sum is None:  # nothing scored: a zero loss, as cross-entropy would be undefined
            loss_sum = torch.zeros((), device=inputs.device)
        return loss_sum.float()

    def _segment_loss(self, hidden, targets, scored, a: int, b: int, is_final: bool):
        """Summed loss of one segment's hidden states ``[B, l, D]``; None if nothing scored."""
        model = self.model
        if model.head_kind == "lm":
            mask = scored[:, a:b]  # [B, l]
            if not bool(mask.any()):
                return None
            logits = model.head(hidden[mask])  # [N, K]
            return F.cross_entropy(logits.float(), targets[:, a:b][mask], reduction="sum")
        if not is_final:
            return None
        out = model.head(hidden[:, -1])  # [B, K]
        if model.head_kind == "regress":
            return F.mse_loss(out.float(), targets.float())
        return F.cross_entropy(out.float(), targets, ignore_index=IGNORE_INDEX)
