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

from memzoo.metrics.ranking import hit_rate_and_ndcg, model_scores, popularity_scores, ranks
from memzoo.tasks.recommend import Recommend


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
    popular = popularity_scores(task.sequences(), task.num_catalogue_items)[None, :].expand(
        len(targets), -1
    )  # [N, I]
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
