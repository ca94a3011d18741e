"""What phase B of a continual run does to keep task A: no remedy, experience replay, or EWC.

The phase runs through the one lifecycle as any single-task run (:class:`PhaseRecipe`, a
:class:`SingleTaskRecipe` on a given task, e.g. B in its own token ids); a remedy changes only
its batches (replay) or its loss (EWC), never the loop. Both are the published methods,
implemented here (no continual-learning library fits the pinned torch; see
:mod:`memzoo.train.recipes.continual`):

**Experience replay** (ER; Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual
Learning", arXiv:1902.10486; Rolnick et al. 2019, "Experience Replay for Continual Learning").
A buffer of ``replay_buffer`` of A's training examples — a uniform random subset, drawn once
(what reservoir sampling keeps after one pass over A's training set) — and every phase-B batch of
``n`` B examples gets ``k = round(n * f / (1 - f))`` examples drawn uniformly (with replacement)
from the buffer, so A's share of the combined batch is ``f = replay_fraction`` up to rounding to
whole examples (``f = 0.5``: as many A as B examples, the ER of Chaudhry et al.). B's own batches
— their order and number, hence the schedule — are those of a run without replay; the loss is the
usual mean cross-entropy over every scored token of the combined batch. ``f = 0`` is no remedy.

**Elastic weight consolidation** (EWC; Kirkpatrick et al. 2017, "Overcoming catastrophic
forgetting in neural networks", PNAS 114(13), eq. 3). At the end of phase A, with A's selected
weights θ_A, the diagonal of the Fisher information of A's loss is estimated from
``fisher_samples`` of A's training examples, one example at a time::

    F_i = (1/N) Σ_n (∂ℓ_n/∂θ_i)²      ℓ_n: the training loss of example n (mean cross-entropy
                                      over its scored tokens) with its TRUE labels

— the *empirical* Fisher (labels from the data, not sampled from the model; at A's end the model
predicts A's labels, so the two nearly agree). Phase B then minimises its loss plus::

    (λ/2) Σ_i F_i (θ_i - θ_A,i)²      λ = ewc_lambda

With ``λ = 0`` the penalty and its gradient are exactly zero: the run is the run without remedy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from memzoo.tasks.base import TaskData
from memzoo.tasks.continual import pad_to
from memzoo.train.config import RunConfig
from memzoo.train.evaluation import evaluate
from memzoo.train.recipes.single_task import SingleTaskRecipe

REPLAY_SEED_OFFSET = 3_000_017  # the replay draws never share a generator with the data or order


def replay_count(batch_size: int, fraction: float) -> int:
    """A examples added to a B batch of ``batch_size`` so that A is ``fraction`` of the whole.

    >>> replay_count(32, 0.5), replay_count(32, 0.25), replay_count(32, 0.0)
    (32, 11, 0)
    """
    return round(batch_size * fraction / (1 - fraction))


class Replay:
    """The replay buffer of A's training examples and the mixing of it into B's batches."""

    def __init__(self, train_a: TaskData, size: int, fraction: float, seed: int):
        self.generator = torch.Generator().manual_seed(seed + REPLAY_SEED_OFFSET)
        keep = torch.randperm(len(train_a.inputs), generator=self.generator)[:size]
        self.inputs, self.targets = train_a.inputs[keep], train_a.targets[keep]
        self.fraction = fraction

    def mix(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[tuple[Any, Any]]:
        """Each B batch followed by its A examples, both right-padded to the longer length."""
        for inputs, targets in batches:
            k = replay_count(len(inputs), self.fraction)
            if k == 0:
                yield inputs, targets
                continue
            rows = torch.randint(len(self.inputs), (k,), generator=self.generator)
            length = max(inputs.shape[1], self.inputs.shape[1])
            b_part = pad_to(TaskData(inputs, targets), length)
            a_part = pad_to(TaskData(self.inputs[rows], self.targets[rows]), length)
            yield torch.cat((b_part[0], a_part[0])), torch.cat((b_part[1], a_part[1]))


def fisher_diagonal(model: torch.nn.Module, step, inputs: torch.Tensor, targets: torch.Tensor) -> dict:
    """``{name: F}``: the mean over the examples of the squared gradient of each one's loss
    (``step(inputs, targets)`` runs forward and backward of a batch, as a recipe's train step;
    here a batch of one). A parameter no example reaches has ``F = 0``. Gradients are left zero."""
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    fisher = {name: torch.zeros_like(p) for name, p in params.items()}
    model.train()
    for n in range(len(inputs)):
        model.zero_grad(set_to_none=True)
        step((inputs[n : n + 1], targets[n : n + 1]))
        for name, p in params.items():
            if p.grad is not None:
                fisher[name] += p.grad.detach().float().pow(2)
    model.zero_grad(set_to_none=True)
    return {name: f / max(len(inputs), 1) for name, f in fisher.items()}


@dataclass
class EWC:
    """The EWC penalty around the weights ``anchor`` (θ_A) with importances ``fisher`` (F)."""

    fisher: dict[str, torch.Tensor]
    anchor: dict[str, torch.Tensor]
    lam: float

    @classmethod
    def after(cls, model: torch.nn.Module, step, train_a: TaskData, samples: int, lam: float) -> EWC:
        """At A's end: F from A's first ``samples`` training examples, θ_A = the weights now."""
        fisher = fisher_diagonal(model, step, train_a.inputs[:samples], train_a.targets[:samples])
        anchor = {name: p.detach().clone() for name, p in model.named_parameters() if name in fisher}
        return cls(fisher, anchor, lam)

    def penalty(self, model: torch.nn.Module) -> torch.Tensor:
        """``(λ/2) Σ_i F_i (θ_i - θ_A,i)²`` of ``model``'s current weights (differentiable)."""
        params = dict(model.named_parameters())
        total = sum((f * (params[name] - self.anchor[name]).pow(2)).sum() for name, f in self.fisher.items())
        return 0.5 * self.lam * total


class PhaseRecipe(SingleTaskRecipe):
    """One phase of a continual run: ``cfg`` trained on ``task`` (e.g. B in its own ids), with
    an optional ``replay`` mixed into its batches and an ``ewc`` penalty added to its loss.

    Its own test metrics are the test accuracy alone: the continual record scores each phase
    itself (:mod:`memzoo.train.recipes.continual`)."""

    def __init__(self, cfg: RunConfig, task, *, model, replay: Replay | None = None, ewc: EWC | None = None):
        super().__init__(cfg, model=model)
        self.task, self.replay, self.ewc = task, replay, ewc

    def batches(self, epoch: int, generator: torch.Generator):
        batches = super().batches(epoch, generator)
        return batches if self.replay is None else self.replay.mix(batches)

    def train_step(self, batch) -> torch.Tensor:
        loss = super().train_step(batch)
        if self.ewc is None:
            return loss
        penalty = self.ewc.penalty(self.model)
        penalty.backward()  # gradients accumulate onto the task loss's
        return loss.detach() + penalty.detach()

    def test(self) -> dict[str, Any]:
        outputs = self.model.head.out_features
        data = self.data.test
        return evaluate(self.model, data, self.task.head, outputs, self.device, segment_len=self.segment_len)


def make_remedy(joint, recipe_a: PhaseRecipe, model: torch.nn.Module) -> dict[str, Any]:
    """The keyword arguments of phase B's :class:`PhaseRecipe` for ``joint.remedy`` (the
    continual task), built from phase A's recipe (its training data and step) and the model at
    A's end."""
    train_a, seed = recipe_a.data.train, recipe_a.tc.seed
    if joint.remedy == "replay":
        return {"replay": Replay(train_a, joint.replay_buffer, joint.replay_fraction, seed)}
    if joint.remedy == "ewc":
        return {"ewc": EWC.after(model, recipe_a.train_step, train_a, joint.fisher_samples, joint.ewc_lambda)}
    return {}
