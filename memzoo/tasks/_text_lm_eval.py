"""Scoring a byte language model in bits per byte, and ``text_lm``'s long-context curve.

Shape legend: B windows, T window length, S spans, C context bytes, L ``span`` bytes.

**Bits per byte.** The mean over scored positions of the cross-entropy in nats, divided by
ln 2. With one token per byte (vocabulary 256, text as UTF-8 bytes) that is the bits per
byte of the text.

**The long-context curve** (the protocol of Transformer-XL, Dai et al. 2019, and the
Compressive Transformer, Rae et al. 2020: the same targets scored with more and more of the
text before them). A *span* is ``L + 1`` bytes ``doc[s : s + L + 1]`` of one test document;
the model reads ``C`` bytes of the document immediately before it and the span's first ``L``
bytes, ``doc[s - C : s + L]``, and is scored on the span's last ``L`` bytes only. For every
``C`` of the curve the spans and the scored bytes are the same, so the bits per byte differ
only by the context. Spans are taken from the end of every test document that holds
``max(C) + L + 1`` bytes, going back ``L`` bytes at a time while ``s >= max(C)``, at most
``per_document`` of them per document; then round-robin over the documents (the last span of
each, then the one before, ...) up to ``max_spans`` in all, so the spans come from as many
documents as possible. Documents in name order: deterministic, no seed.

A model reads each ``C + L`` input whole, or segment by segment with its state carried
(``SegmentRunner``) when a segment length is given — the path the trainer evaluates a
segmented long-term memory with. A model with a layer whose state grows with every token
(``state_growth == "O(T)"``: full attention's KV cache) never saw a position past its training
windows (rotary positions it was not trained at), so it is scored only for ``C + L <=
trained_len``; the other contexts are stored as None with the reason beside them, and the
curve shows where such a memory stops. Bounded-state layers (recurrent, sliding window, fast
weights, long-term memories) are scored at every ``C``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from memzoo.models import SegmentRunner
from memzoo.models.targets import IGNORE_INDEX

EVAL_ROWS = 16  # windows per forward pass


def _device(model: torch.nn.Module) -> torch.device:
    first = next(model.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def summed_nats(
    model, inputs: torch.Tensor, targets: torch.Tensor, segment_len: int | None = None
) -> tuple[float, int]:
    """``(sum of cross-entropy in nats, number of scored bytes)`` of ``model`` (an ``lm``
    ``SequenceModel``) on ``inputs`` / ``targets`` ``[B, T]``, in eval mode without gradients.

    The head runs at scored positions only (targets != -100); with ``segment_len`` the
    inputs are read segment by segment with the state carried (``SegmentRunner``)."""
    model.eval()
    device = _device(model)
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(inputs), EVAL_ROWS):
            x = inputs[start : start + EVAL_ROWS].to(device)
            y = targets[start : start + EVAL_ROWS].to(device)
            if segment_len is not None:
                logits, kept = SegmentRunner(model, segment_len).scored_outputs(x, y)  # [B, S, K]
                scored = kept != IGNORE_INDEX
                logits, kept = logits[scored], kept[scored]  # [N, K], [N]
            else:
                hidden, _ = model.hidden(x)  # [B, T, D]
                scored = y != IGNORE_INDEX
                logits, kept = model.head(hidden[scored]), y[scored]  # [N, K], [N]
            total += float(F.cross_entropy(logits.float(), kept, reduction="sum"))
            count += int(kept.numel())
    return total, count


def bits_per_byte(
    model, inputs: torch.Tensor, targets: torch.Tensor, segment_len: int | None = None
) -> float:
    """Mean bits per scored byte (nats / ln 2); NaN when nothing is scored."""
    total, count = summed_nats(model, inputs, targets, segment_len)
    return total / count / math.log(2) if count else float("nan")


def choose_spans(
    documents: list[torch.Tensor], longest_context: int, span: int, per_document: int, max_spans: int
) -> list[tuple[int, int]]:
    """``[(document index, s), ...]``: the spans of the curve (see the module docstring).

    >>> doc = torch.arange(20)
    >>> choose_spans([doc, torch.arange(5)], longest_context=8, span=4, per_document=3, max_spans=10)
    [(0, 15), (0, 11)]
    >>> choose_spans([doc, doc, doc], longest_context=8, span=4, per_document=3, max_spans=4)
    [(0, 15), (1, 15), (2, 15), (0, 11)]
    """
    per_doc = []
    for index, doc in enumerate(documents):
        starts = range(len(doc) - span - 1, longest_context - 1, -span)  # from the end, back
        per_doc.append([(index, s) for s in list(starts)[:per_document]])
    rounds = max((len(spans) for spans in per_doc), default=0)
    chosen = [spans[r] for r in range(rounds) for spans in per_doc if r < len(spans)]
    return chosen[:max_spans]


def span_windows(
    documents: list[torch.Tensor], spans: list[tuple[int, int]], context: int, span: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets ``[S, C + L]`` of the spans read with ``context`` bytes before
    them: targets are the next bytes, -100 on the ``C`` context positions."""
    inputs = torch.stack([documents[d][s - context : s + span] for d, s in spans])
    targets = torch.stack([documents[d][s - context + 1 : s + span + 1] for d, s in spans]).clone()
    targets[:, :context] = IGNORE_INDEX
    return inputs, targets


def grows_with_length(model) -> list[str]:
    """Names of ``model``'s layers whose state grows with every token read (``O(T)``)."""
    return [
        getattr(block.layer, "layer_name", type(block.layer).__name__)
        for block in getattr(model, "blocks", ())
        if getattr(block.layer, "state_growth", "O(1)") == "O(T)"
    ]


def context_curve(
    model,
    documents: list[torch.Tensor],
    contexts: tuple[int, ...],
    span: int,
    *,
    trained_len: int,
    segment_len: int | None,
    per_document: int,
    max_spans: int,
) -> dict[str, Any]:
    """``context_bpb_<C>`` for each ``C`` in ``contexts`` (None where not scored),
    ``context_spans`` and ``context_documents`` (how many spans, from how many documents)
    and, when some ``C`` is not scored, ``context_bpb_reason``. ``documents`` are the test
    documents as ``LongTensor`` bytes."""
    spans = choose_spans(documents, max(contexts), span, per_document, max_spans)
    out: dict[str, Any] = {
        "context_spans": len(spans),
        "context_documents": len({d for d, _ in spans}),
    }
    growing = grows_with_length(model)
    skipped = []
    for context in contexts:
        key = f"context_bpb_{context}"
        if not spans or (growing and context + span > trained_len):
            out[key] = None
            skipped.append(context)
            continue
        inputs, targets = span_windows(documents, spans, context, span)
        out[key] = bits_per_byte(model, inputs, targets, segment_len)
    if not spans:
        out["context_bpb_reason"] = (
            f"no test document holds {max(contexts) + span + 1} bytes (max context + span + 1)"
        )
    elif skipped:
        out["context_bpb_reason"] = (
            f"layer(s) {', '.join(sorted(set(growing)))} hold O(T) state and never saw a position "
            f"past the training window (seq_len={trained_len}): contexts {skipped} need "
            f"context + span > {trained_len}, not scored"
        )
    return out
