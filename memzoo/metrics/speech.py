"""Speech metrics and the model-free baseline: edit distance, word error rate, the CTC
metric accumulator, and dynamic-time-warping nearest neighbour.

Shape legend: Q queries, M templates, T frames, F features per frame.

(They live here until memzoo has a shared ``metrics`` package.)

>>> edit_distance(["one", "two", "three"], ["one", "three", "three", "four"])
2
>>> word_error_rate([[1, 2, 3], [4]], [[1, 3], [4, 4]])  # 1 deletion + 1 insertion over 4 words
0.5
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from memzoo.models.ctc import greedy_decode, targets_to_labels


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance between two sequences: the fewest substitutions, deletions and
    insertions that turn ``reference`` into ``hypothesis``."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, start=1):
            current[j] = min(
                previous[j] + 1,  # deletion
                current[j - 1] + 1,  # insertion
                previous[j - 1] + (ref != hyp),  # substitution (or match)
            )
        previous = current
    return previous[-1]


def word_error_rate(references: Sequence[Sequence], hypotheses: Sequence[Sequence]) -> float:
    """Corpus word error rate: total edit distance over the total number of reference words
    (can exceed 1 when a hypothesis inserts many words)."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    words = sum(len(r) for r in references)
    errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    return errors / max(words, 1)


class CtcAccumulator:
    """Metrics of a ``ctc`` head, batch by batch, with the interface of
    :class:`memzoo.train.metrics.MetricAccumulator` (``update(logits, targets, slices)``,
    ``compute()``).

    ``compute()`` returns ``wer`` (corpus word error rate of greedy decoding; lower is
    better), ``sentence_accuracy`` (utterances decoded exactly), ``accuracy`` (= 1 - wer,
    floored at 0, so tables that rank by accuracy rank CTC runs the same way), ``words``
    (reference words scored) and ``slices`` (WER per slice value, e.g. ``{"voice=20": 0.12}``).
    """

    def __init__(self, blank: int):
        self.blank = blank
        self.errors = 0
        self.words = 0
        self.exact = 0
        self.utterances = 0
        self.slice_counts: dict[str, list[int]] = {}  # "name=value" -> [errors, words]

    def update(self, logits: torch.Tensor, targets: torch.Tensor, slices=None) -> None:
        """``logits`` ``[B, T, K]``; ``targets`` ``[B, T]`` labels left-aligned, -100 after."""
        hypotheses = greedy_decode(logits, self.blank)
        references = targets_to_labels(targets)
        errors = [edit_distance(r, h) for r, h in zip(references, hypotheses)]
        lengths = [len(r) for r in references]
        self.errors += sum(errors)
        self.words += sum(lengths)
        self.exact += sum(e == 0 for e in errors)
        self.utterances += len(errors)
        for name, labels in (slices or {}).items():
            for n, value in enumerate(labels.tolist()):
                counts = self.slice_counts.setdefault(f"{name}={value}", [0, 0])
                counts[0] += errors[n]
                counts[1] += lengths[n]

    def compute(self) -> dict:
        wer = self.errors / max(self.words, 1)
        return {
            "wer": wer,
            "accuracy": max(0.0, 1.0 - wer),
            "sentence_accuracy": self.exact / max(self.utterances, 1),
            "words": self.words,
            "slices": {key: e / max(w, 1) for key, (e, w) in sorted(self.slice_counts.items())},
        }


def evaluate_ctc(model, data, blank: int, batch_size: int = 64) -> dict:
    """:class:`CtcAccumulator` metrics of ``model`` (per-frame logits ``[B, T, K]``) on
    ``data`` (a ``TaskData`` with CTC targets), in eval mode without gradients."""
    device = next(model.parameters()).device
    acc = CtcAccumulator(blank)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            rows = slice(start, start + batch_size)
            logits, _ = model(data.inputs[rows].to(device))
            acc.update(logits.float(), data.targets[rows], {k: v[rows] for k, v in data.slices.items()})
    model.train(was_training)
    return acc.compute()


# ---- dynamic time warping ---------------------------------------------------------------
def dtw_naive(a: np.ndarray, b: np.ndarray) -> float:
    """Reference DTW: the cheapest monotone alignment of frames ``a`` ``[Ta, F]`` and ``b``
    ``[Tb, F]`` (steps (1,0), (0,1), (1,1); Euclidean frame cost), divided by ``Ta + Tb``."""
    ta, tb = len(a), len(b)
    acc = np.full((ta + 1, tb + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, ta + 1):
        for j in range(1, tb + 1):
            cost = float(np.linalg.norm(a[i - 1] - b[j - 1]))
            acc[i, j] = cost + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    return float(acc[ta, tb]) / (ta + tb)


def _pad(sequences: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in sequences])
    out = torch.zeros(len(sequences), int(lengths.max()), sequences[0].shape[1])
    for n, s in enumerate(sequences):
        out[n, : len(s)] = torch.as_tensor(s)
    return out, lengths


def dtw_distances(
    queries: list[np.ndarray], templates: list[np.ndarray], chunk_cells: int = 8_000_000
) -> torch.Tensor:
    """``[Q, M]`` DTW distance (as :func:`dtw_naive`) of every query to every template.

    Vectorised over all pairs of a chunk of queries, one row ``i`` of the accumulated-cost
    table at a time. A path reaches cell ``(i, j)`` by entering row ``i`` at some column
    ``k <= j`` from row ``i - 1`` (cost ``u[k] = c[i, k] + min(acc[i-1, k], acc[i-1, k-1])``)
    and then stepping right, so with ``s`` the running sum of ``c[i, :]``:
    ``acc[i, j] = s[j] + min_{k <= j} (u[k] - s[k])`` — a cumulative minimum.
    ``chunk_cells`` bounds the pairs × cells held at once (about 16 bytes a cell).
    """
    if any(len(s) == 0 for s in [*queries, *templates]):
        raise ValueError("DTW needs at least one frame in every sequence")
    b, lb = _pad(templates)  # [M, Tb, F], [M]
    a_all, la_all = _pad(queries)  # [Q, Ta, F], [Q]
    m, tb, ta = b.shape[0], b.shape[1], a_all.shape[1]
    step = max(1, chunk_cells // max(m * ta * tb, 1))
    out = torch.empty(len(queries), m)
    for start in range(0, len(queries), step):
        a, la = a_all[start : start + step], la_all[start : start + step]  # [q, Ta, F], [q]
        cost = torch.cdist(a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1]))  # [q*Ta, M*Tb]
        cost = cost.view(len(a), ta, m, tb).transpose(1, 2)  # [q, M, Ta, Tb]
        last = torch.empty(len(a), m, ta)  # acc[i, lb - 1] per row i
        inf = torch.full((len(a), m, 1), float("inf"))
        row = cost[:, :, 0].cumsum(-1)  # row 0: only steps to the right
        last[:, :, 0] = row.gather(-1, (lb - 1)[None, :, None].expand(len(a), m, 1))[..., 0]
        for i in range(1, ta):
            above = torch.minimum(row, torch.cat([inf, row[..., :-1]], -1))  # min(acc[i-1, k], acc[i-1, k-1])
            c = cost[:, :, i]  # [q, M, Tb]
            s = c.cumsum(-1)
            row = s + torch.cummin(c + above - s, dim=-1).values
            last[:, :, i] = row.gather(-1, (lb - 1)[None, :, None].expand(len(a), m, 1))[..., 0]
        total = last.gather(-1, (la - 1)[:, None, None].expand(len(a), m, 1))[..., 0]  # [q, M]
        out[start : start + len(a)] = total / (la[:, None] + lb[None, :])
    return out


def dtw_nearest_neighbour(
    queries: list[np.ndarray], templates: list[np.ndarray], template_labels: Sequence[int]
) -> np.ndarray:
    """``[Q]`` label of each query's nearest template under :func:`dtw_distances`."""
    nearest = dtw_distances(queries, templates).argmin(1)
    return np.asarray(template_labels)[nearest.numpy()]
