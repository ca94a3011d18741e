"""Ranking metrics (HR@k, NDCG@k) and the scores they rank, shared by the ``recommend`` task
and ``memzoo.apps.recommend``: a model's logits, popularity, and an item-to-item first-order
Markov model (next-item counts given the last item, popularity breaking ties).

Shape legend: N users, I items. Ties rank the lower item index first, so the numbers are
deterministic.
"""

from __future__ import annotations

import torch


def ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1-based rank of each target among ``scores`` ``[N, I]`` (ties: lower index first) ``[N]``."""
    target_scores = scores.gather(1, targets[:, None])  # [N, 1]
    index = torch.arange(scores.shape[1])[None, :]  # [1, I]
    ahead = (scores > target_scores) | ((scores == target_scores) & (index < targets[:, None]))
    return ahead.sum(1) + 1


def hit_rate_and_ndcg(rank: torch.Tensor, k: int) -> tuple[float, float]:
    """HR@k and NDCG@k from ranks ``[N]``."""
    hit = rank <= k
    gain = torch.where(hit, 1.0 / torch.log2(rank.double() + 1), torch.zeros((), dtype=torch.float64))
    return float(hit.double().mean()), float(gain.mean())


def popularity_scores(sequences, num_items: int) -> torch.Tensor:
    """Occurrence count ``[I]`` of each item in the training part of ``sequences`` (every
    history without its last item)."""
    counts = torch.zeros(num_items, dtype=torch.float64)
    for sequence in sequences:
        counts += torch.bincount(torch.tensor(sequence[:-1], dtype=torch.long), minlength=num_items).double()
    return counts


def model_scores(model: torch.nn.Module, inputs: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits of an lm-head model at the final position of each history: ``[N, I]``."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            hidden, _ = model.hidden(inputs[start : start + batch_size].to(device))  # [B, T, D]
            outputs.append(model.head(hidden[:, -1]).float().cpu())  # [B, I]
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.zeros(0, 0)


def transition_counts(inputs: torch.Tensor, targets: torch.Tensor, num_items: int) -> torch.Tensor:
    """First-order Markov counts ``[I, I]``: ``[a, b]`` is how often item ``b`` followed item
    ``a`` in the training rows (``inputs``/``targets`` ``[N, T]``: the item read at a position
    and the next item scored there; padding (ids ``>= I``) and unscored positions (-100) are
    skipped). Identical rows (a training set cycled over a small pool) count once."""
    width = inputs.shape[1]
    rows = torch.unique(torch.cat([inputs, targets], dim=1), dim=0)  # [N', 2T]
    inputs, targets = rows[:, :width], rows[:, width:]
    kept = (targets >= 0) & (targets < num_items) & (inputs >= 0) & (inputs < num_items)
    pairs = inputs[kept] * num_items + targets[kept]
    return torch.bincount(pairs, minlength=num_items * num_items).double().view(num_items, num_items)


def markov_scores(counts: torch.Tensor, last_items: torch.Tensor, popularity: torch.Tensor) -> torch.Tensor:
    """Scores ``[N, I]`` of an item-to-item Markov model: the transition counts ``[I, I]`` out
    of each history's last item ``[N]``, with ``popularity`` ``[I]`` (scaled below one count)
    breaking ties, so an item never seen as a last item falls back to the popularity ranking."""
    backoff = popularity.double() / (popularity.double().sum() + 1.0)  # [I], each < 1, sums < 1
    num_items = counts.shape[0]
    seen = (last_items >= 0) & (last_items < num_items)
    rows = counts[last_items.clamp(0, num_items - 1)] * seen[:, None]  # [N, I]; padding: no counts
    return rows + backoff[None, :]
