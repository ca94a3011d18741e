"""``recommend``: next-item prediction from each user's history (lm head over items).

Shape legend: N examples (users), T ``seq_len``, I items.

Items are tokens ``0 .. I-1``; token ``I`` pads histories shorter than ``T`` on the left. The
split is leave-last-out per user:

- test: one example per user (with at least 2 items) reading the most recent ``T`` items
  before the last and scored only at the final position, whose target is the last item;
- training: per user with at least 3 items, the history without its last item, scored at
  every position on the item that follows (next-item prediction all along the history),
  so the held-out item is never read or predicted in training.

The interactions are generated (``path`` unset) or read from a CSV through
``memzoo.data.interactions.load_interactions``. Generated users each belong to one of
``num_clusters`` latent preference clusters that partition the items; each cluster orders its
items in a cycle. A user's next item continues the cycle from the current item with
probability ``follow_prob`` (a sequential pattern), is another item of the cluster with
probability ``cluster_prob`` (a preference) and otherwise any item, drawn from a global
Zipf popularity that also weights the cluster draws.

A run stores, next to its top-1 ``accuracy``, the hit rates of two model-free rankings
(:meth:`Recommend.baseline_metrics`: popularity, and an item-to-item Markov model) and the model's ``hr@10`` and ``ndcg@10``
(:meth:`Recommend.model_metrics`).

>>> task = Recommend(num_users=4, num_items=12, num_clusters=2, seq_len=6, min_history=3)
>>> train, test = task.split(num_train=4, num_test=100, seed=0)
>>> test.inputs.shape, int((test.targets != -100).sum()), task.input_vocab_size
(torch.Size([4, 6]), 4, 13)
>>> history = task.sequences()[0]
>>> test.inputs[0, -(len(history) - 1):].tolist() == history[:-1], int(test.targets[0, -1]) == history[-1]
(True, True)
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field, model_validator

from memzoo.data.interactions import load_interactions
from memzoo.metrics.ranking import (
    hit_rate_and_ndcg,
    markov_scores,
    model_scores,
    popularity_scores,
    ranks,
    transition_counts,
)
from memzoo.tasks._real_data import check_count, draw, hold_out
from memzoo.tasks.base import IGNORE_INDEX, VALIDATION_SEED_OFFSET, DataSplits, Task, TaskData
from memzoo.tasks.registry import register_task

HIT_K = 10  # the cut-off of the hit rate and NDCG a run stores (hr@10)


def generate_interactions(
    num_users: int,
    num_items: int,
    num_clusters: int,
    min_history: int,
    max_history: int,
    follow_prob: float,
    cluster_prob: float,
    seed: int,
) -> list[list[int]]:
    """Per user, a generated item sequence (see the module docstring); deterministic in ``seed``."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / (1.0 + rng.permutation(num_items))  # Zipf weights, random item ranks
    popularity /= popularity.sum()
    members = np.array_split(rng.permutation(num_items), num_clusters)  # cycle order per cluster
    cluster_of = np.empty(num_items, dtype=np.int64)
    place = np.empty(num_items, dtype=np.int64)  # position of each item in its cluster's cycle
    for c, items in enumerate(members):
        cluster_of[items], place[items] = c, np.arange(len(items))
    sequences = []
    for _ in range(num_users):
        c = int(rng.integers(num_clusters))
        weights = popularity[members[c]] / popularity[members[c]].sum()
        item = int(rng.choice(members[c], p=weights))
        sequence = [item]
        for _ in range(int(rng.integers(min_history, max_history + 1)) - 1):
            draw_ = rng.random()
            if draw_ < follow_prob and cluster_of[item] == c:
                item = int(members[c][(place[item] + 1) % len(members[c])])
            elif draw_ < follow_prob + cluster_prob:
                item = int(rng.choice(members[c], p=weights))
            else:
                item = int(rng.choice(num_items, p=popularity))
            sequence.append(item)
        sequences.append(sequence)
    return sequences


@functools.lru_cache(maxsize=16)
def _load(params: tuple) -> tuple[tuple[tuple[int, ...], ...], int]:
    """(sequences, number of items) for a task's data parameters, computed once."""
    kind, *rest = params
    if kind == "generated":
        sequences = generate_interactions(*rest)
        return tuple(map(tuple, sequences)), rest[1]

    path, user_column, item_column, time_column, sep = rest
    data = load_interactions(
        path, user_column=user_column, item_column=item_column, time_column=time_column, sep=sep
    )
    return tuple(map(tuple, data.sequences)), data.num_items


@register_task("recommend")
class Recommend(Task):
    """Predict each user's next item from their history; leave-last-out evaluation."""

    description: ClassVar[str] = "next-item recommendation from user histories (generated or a CSV)"
    head: ClassVar[str] = "lm"

    seq_len: int = Field(20, ge=1, description="most recent history items read (T)")
    path: str | None = Field(None, description="interactions CSV (user,item,timestamp); generated when unset")
    user_column: str = Field("userId", description="CSV column of user ids")
    item_column: str = Field("movieId", description="CSV column of item ids")
    time_column: str | None = Field("timestamp", description="CSV column that orders each history")
    sep: str = Field(",", description="CSV field separator")
    num_users: int = Field(1000, ge=1, description="generated users")
    num_items: int = Field(200, ge=2, description="generated items")
    num_clusters: int = Field(8, ge=1, description="generated latent preference clusters")
    min_history: int = Field(5, ge=2, description="shortest generated history")
    follow_prob: float = Field(0.6, ge=0, le=1, description="chance a generated user follows the cycle")
    cluster_prob: float = Field(0.25, ge=0, le=1, description="chance of another item of the cluster")
    data_seed: int = Field(0, description="seed of the generated interactions")

    @model_validator(mode="after")
    def _consistent(self) -> Recommend:
        if self.num_clusters > self.num_items:
            raise ValueError(f"num_clusters={self.num_clusters} exceeds num_items={self.num_items}")
        if self.follow_prob + self.cluster_prob > 1:
            raise ValueError("follow_prob + cluster_prob must be at most 1")
        if self.min_history > self.seq_len + 1:
            raise ValueError(f"min_history={self.min_history} exceeds seq_len + 1 = {self.seq_len + 1}")
        return self

    def _params(self) -> tuple:
        if self.path is None:
            return (
                "generated",
                self.num_users,
                self.num_items,
                self.num_clusters,
                self.min_history,
                self.seq_len + 1,
                self.follow_prob,
                self.cluster_prob,
                self.data_seed,
            )
        return ("csv", self.path, self.user_column, self.item_column, self.time_column, self.sep)

    def sequences(self) -> list[list[int]]:
        """Every user's full item sequence in time order (the last item is held out)."""
        return [list(s) for s in _load(self._params())[0]]

    @property
    def num_catalogue_items(self) -> int:
        """Items (``I``): the head's size; the padding token is ``I`` (known without generating)."""
        return self.num_items if self.path is None else _load(self._params())[1]

    def own_data_bytes(self) -> tuple[int, list[str]]:
        """Generated histories: at least ``min_history`` Python ints (>= 36 bytes with their
        tuple slot) per user; a CSV's size is its own."""
        if self.path is not None:
            return 0, []
        return 36 * self.num_users * self.min_history, ["task.num_users", "task.min_history"]

    @property
    def input_vocab_size(self) -> int:
        return self.num_catalogue_items + 1

    @property
    def output_vocab_size(self) -> int:
        return self.num_catalogue_items

    def _rows(self, pairs: list[tuple[list[int], list[int]]]) -> TaskData:
        """Left-padded inputs and targets ``[N, T]`` from (inputs, targets) lists ending together."""
        num, length = len(pairs), self.seq_len
        inputs = torch.full((num, length), self.num_catalogue_items, dtype=torch.long)
        targets = torch.full((num, length), IGNORE_INDEX, dtype=torch.long)
        for n, (read, predict) in enumerate(pairs):
            read, predict = read[-length:], predict[-length:]
            inputs[n, length - len(read) :] = torch.tensor(read, dtype=torch.long)
            targets[n, length - len(predict) :] = torch.tensor(predict, dtype=torch.long)
        return TaskData(inputs=inputs, targets=targets)

    def training_pool(self) -> TaskData:
        """One training example per user with at least 3 items (see the module docstring)."""
        kept = [s[:-1] for s in self.sequences() if len(s) >= 3]
        return self._rows([(s[:-1], s[1:]) for s in kept])

    def test_data(self) -> TaskData:
        """One example per user: the history before the last item; only the last item scored."""
        kept = [s for s in self.sequences() if len(s) >= 2]
        return self._rows([(s[:-1], [s[-1]]) for s in kept])

    def splits(self, num_train: int, num_validation: int, num_test: int, seed: int) -> DataSplits:
        """Training examples from the pool without a seeded ``VALIDATION_FRACTION`` of its users;
        those users' second-to-last items (only that position scored) are the validation
        examples; then the first ``num_test`` users' held-out last items."""
        check_count("num_train", num_train)
        check_count("num_test", num_test)
        pool = self.training_pool()
        kept, held = hold_out(len(pool), seed + VALIDATION_SEED_OFFSET)
        picked = kept[draw(len(kept), num_train, torch.Generator().manual_seed(seed))]
        validation = pool.rows(held[:num_validation])
        last_only = torch.full_like(validation.targets, IGNORE_INDEX)
        last_only[:, -1] = validation.targets[:, -1]
        test = self.test_data()
        return DataSplits(
            pool.rows(picked),
            TaskData(validation.inputs, last_only),
            TaskData(test.inputs[:num_test], test.targets[:num_test]),
        )

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """``num_train`` training examples (whole shuffled passes over the pool, see
        ``memzoo.tasks._real_data``) and the first ``num_test`` users' held-out items."""
        check_count("num_train", num_train)
        check_count("num_test", num_test)
        pool = self.training_pool()
        picked = draw(len(pool), num_train, torch.Generator().manual_seed(seed))
        test = self.test_data()
        return (
            TaskData(pool.inputs[picked], pool.targets[picked]),
            TaskData(test.inputs[:num_test], test.targets[:num_test]),
        )

    def generate(self, num_examples: int, seed: int) -> TaskData:
        """``num_examples`` training examples drawn with ``seed``."""
        return self.split(num_examples, 0, seed)[0]

    # ---- what a run stores beyond accuracy (the Task hooks) ------------------------------
    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        """Two model-free rankings of every item for the held-out users ``test``
        (``memzoo.metrics.ranking``), each as ``<name>_hr@1`` (compares with the run's
        ``accuracy``, the model's top-1 hit rate), ``<name>_hr@10`` and ``<name>_ndcg@10``:

        - ``popularity``: items by how often they occur in the training histories;
        - ``markov``: an item-to-item first-order Markov model, the counts of each next item
          after the history's last item in the training rows ``train``, popularity breaking
          ties (and ranking alone after an item never seen in training).
        """
        targets = test.targets[:, -1]  # [N] the held-out last items
        popularity = popularity_scores(self.sequences(), self.num_catalogue_items)  # [I]
        counts = transition_counts(train.inputs, train.targets, self.num_catalogue_items)  # [I, I]
        out: dict[str, float] = {}
        for name, scores in (
            ("popularity", popularity[None, :].expand(len(targets), -1)),
            ("markov", markov_scores(counts, test.inputs[:, -1], popularity)),
        ):
            rank = ranks(scores, targets)
            hr1, _ = hit_rate_and_ndcg(rank, 1)
            hr, ndcg = hit_rate_and_ndcg(rank, HIT_K)
            out.update({f"{name}_hr@1": hr1, f"{name}_hr@{HIT_K}": hr, f"{name}_ndcg@{HIT_K}": ndcg})
        return out

    def model_metrics(
        self, model: torch.nn.Module, test: TaskData, segment_len: int | None = None
    ) -> dict[str, float]:
        """``hr@10`` and ``ndcg@10`` of a trained model on the held-out users ``test``, every
        item ranked by its logits at the end of the history (``memzoo.metrics.ranking``)."""
        rank = ranks(model_scores(model, test.inputs), test.targets[:, -1])
        hr, ndcg = hit_rate_and_ndcg(rank, HIT_K)
        return {f"hr@{HIT_K}": hr, f"ndcg@{HIT_K}": ndcg}
