"""Leave-last-out recommendation quality: HR@k and NDCG@k against a popularity baseline.

Shape legend: N users, I items, T ``seq_len``.

For each user, every item of the catalogue is ranked (no sampled negatives) by the model's
logits at the final position of the user's history; the rank of the held-out last item gives

- HR@k: the fraction of users whose held-out item is in the top ``k``;
- NDCG@k: the mean of ``1 / log2(rank + 1)`` over users, 0 when the rank exceeds ``k``
  (one relevant item, so the ideal DCG is 1).

The popularity baseline ranks items by how often they occur in the training part (every
history without its last item), the same list for every user. Ties rank the lower item index
first, for the model and the baseline alike, so the numbers are deterministic.
"""

from __future__ import annotations

import torch

from memzoo.tasks.recommend import Recommend


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


def popularity_scores(task: Recommend) -> torch.Tensor:
    """Training-part occurrence count of each item ``[I]``."""
    counts = torch.zeros(task.num_catalogue_items, dtype=torch.float64)
    for sequence in task.sequences():
        counts += torch.bincount(
            torch.tensor(sequence[:-1], dtype=torch.long), minlength=len(counts)
        ).double()
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


def evaluate_recommendations(model: torch.nn.Module, task: Recommend, k: int = 10) -> dict:
    """HR@k and NDCG@k of ``model`` and of popularity on every user's held-out last item.

    Returns:
        ``{"hr@k", "ndcg@k", "popularity_hr@k", "popularity_ndcg@k", "random_hr@k",
        "num_users", "num_items"}`` with ``k`` written out, e.g. ``"hr@10"`` (``random_hr@k`` is
        what ranking items at random would score on average).
    """
    test = task.test_data()
    targets = test.targets[:, -1]  # [N]
    model_hr, model_ndcg = hit_rate_and_ndcg(ranks(model_scores(model, test.inputs), targets), k)
    popular = popularity_scores(task)[None, :].expand(len(targets), -1)  # [N, I]
    pop_hr, pop_ndcg = hit_rate_and_ndcg(ranks(popular, targets), k)
    return {
        f"hr@{k}": model_hr,
        f"ndcg@{k}": model_ndcg,
        f"popularity_hr@{k}": pop_hr,
        f"popularity_ndcg@{k}": pop_ndcg,
        "num_users": int(len(targets)),
        "num_items": task.num_catalogue_items,
        f"random_hr@{k}": min(k / task.num_catalogue_items, 1.0),
    }
