"""The loop of one run, from its built model to its stored end: the epochs (steps, validation,
selection, checkpoints, resume points), the checks for divergence, the test scored once.
:func:`memzoo.train.lifecycle.run_lifecycle` (whose docstring describes every stage) starts it
as :class:`RunLoop` and ends it.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.profiler import record_function

from memzoo.results.record import RunRecord
from memzoo.trackers import Trackers
from memzoo.train.checkpoint import read_checkpoint, save_checkpoint
from memzoo.train.distributed import Distributed
from memzoo.train.optim import apply_update, make_optimizer, warmup_cosine
from memzoo.train.phases import FORWARD_BACKWARD, OPTIMIZER, labelled_batches
from memzoo.train.progress import EpochProgress
from memzoo.train.recipe import Recipe
from memzoo.train.resume import ResumePoint, save_resume_point
from memzoo.train.run_ids import make_run_folder
from memzoo.train.segmented import NON_FINITE


def out_of_time(start: float, max_seconds: float | None) -> bool:
    """Whether a run started at ``start`` (perf_counter) has used its wall-time cap."""
    return max_seconds is not None and time.perf_counter() - start > max_seconds


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The plain numbers of a metrics dict (what a curve point keeps)."""
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def finite_weights(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def finite_evaluation(metrics: dict[str, Any], primary: str) -> bool:
    """False when an evaluation saw non-finite model outputs or a non-finite primary metric."""
    value = metrics.get(primary)
    return not metrics.get(NON_FINITE) and not (isinstance(value, float) and not math.isfinite(value))


class Selection:
    """The best validation point so far and its weights."""

    def __init__(self, recipe: Recipe, point: ResumePoint):
        self.metric, self.higher = recipe.primary_metric, recipe.higher_is_better
        self.value, self.metrics, self.epoch = point.best_value, point.best_metrics, point.best_epoch
        self.weights: dict[str, torch.Tensor] | None = None

    def offer(self, metrics: dict[str, Any], epoch: int, model: torch.nn.Module) -> bool:
        """Keep ``metrics`` (and the weights) if they beat the best so far; whether they did."""
        value = metrics.get(self.metric)
        if value is None or not math.isfinite(value):
            return False
        if self.value is not None and not (value > self.value if self.higher else value < self.value):
            return False
        self.value, self.metrics, self.epoch = value, metrics, epoch
        self.weights = copy.deepcopy(model.state_dict())
        return True


def train_batch(
    recipe: Recipe, model, optimizer, scheduler, grad_clip: float, batch
) -> tuple[torch.Tensor, bool]:
    """One optimiser step on ``batch``: zero_grad, the recipe's forward and backward, then, if
    the loss is finite, the clipped update (a non-finite loss leaves the weights as they were).
    Returns the loss and whether it was finite. The phases carry the profiler labels of
    :mod:`memzoo.train.phases`."""
    optimizer.zero_grad(set_to_none=True)
    with record_function(FORWARD_BACKWARD):
        loss = recipe.train_step(batch)
    finite = bool(torch.isfinite(loss))
    if finite:
        with record_function(OPTIMIZER):
            apply_update(model, optimizer, scheduler, grad_clip)
    return loss, finite


@dataclass
class RunLoop:
    """One run between its stored start and its end: the model, its optimiser and schedule,
    the selection, the step count. Every status change goes through ``record.conclude``."""

    recipe: Recipe
    record: RunRecord
    store: Any
    dctx: Distributed
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    order_gen: torch.Generator
    point: ResumePoint  # where training starts (a fresh point, or the resumed one)
    selection: Selection
    checkpoint_dir: Path | None  # rank 0 alone writes files
    total_steps: int
    num_epochs: int
    clock_start: float = 0.0  # perf_counter at step 0 (earlier for a resumed run: its elapsed time)
    step: int = 0
    trackers: Trackers = field(default_factory=Trackers)  # rank 0's; started by the lifecycle

    @classmethod
    def begin(cls, recipe, record, store, dctx, device, resumed, resumed_weights, trackers=None) -> RunLoop:
        """Seed, build the model, optimiser and schedule (restored when ``resumed``); the
        curve goes to ``trackers`` too (default: none)."""
        tc = recipe.tc
        torch.manual_seed(tc.seed)
        model = recipe.build_model(device)
        record.params = sum(p.numel() for p in model.parameters())
        record.state_bytes = recipe.state_bytes()
        steps_per_epoch = recipe.steps_per_epoch()
        total_steps = tc.max_steps or tc.epochs * steps_per_epoch
        optimizer = make_optimizer(model, tc.lr, tc.weight_decay)
        scheduler = warmup_cosine(optimizer, total_steps, tc.warmup_fraction)
        order_gen = torch.Generator().manual_seed(tc.seed)
        point = resumed or ResumePoint(started_at=record.started_at)
        if resumed is not None:
            resumed.restore(model, optimizer, scheduler, order_gen, resumed_weights)
        return cls(
            recipe,
            record,
            store,
            dctx,
            device,
            model,
            optimizer,
            scheduler,
            order_gen,
            point,
            selection=Selection(recipe, point),
            checkpoint_dir=make_run_folder(tc.out_dir, record.run_id)
            if tc.checkpoint and dctx.is_main
            else None,
            total_steps=total_steps,
            num_epochs=math.ceil(total_steps / steps_per_epoch),
            clock_start=time.perf_counter() - point.elapsed,
            step=point.step,
            trackers=trackers if trackers is not None else Trackers(),
        )

    def train_epochs(self, progress: bool | None) -> None:
        """Every epoch left: its steps, then its evaluation, selection and resume point."""
        show = self.dctx.is_main and (progress if progress is not None else sys.stderr.isatty())
        first_epoch = self.num_epochs + 1 if self.point.done else self.point.epoch + 1
        with EpochProgress(self.total_steps, enabled=show, label=self.record.run_id) as bar:
            for epoch in range(first_epoch, self.num_epochs + 1):
                sums, stop_reason = self._train_steps(epoch, bar)
                if self.record.status == "diverged":
                    break
                if self._end_epoch(epoch, sums, stop_reason, bar):
                    break

    def _train_steps(self, epoch: int, bar) -> tuple[dict[str | None, list[float]], str | None]:
        """One epoch's optimiser steps; the loss sums (overall and per ``loss_key``) and why
        the epoch stopped early (``"budget"``, ``"truncated"``; None: it ran out of batches).
        A non-finite loss concludes the run ``diverged``."""
        recipe, tc = self.recipe, self.recipe.tc
        self.model.train()
        sums: dict[str | None, list[float]] = {}
        for batch in labelled_batches(recipe.batches(epoch, self.order_gen)):  # profiler labels: phases.py
            loss, finite = train_batch(
                recipe, self.model, self.optimizer, self.scheduler, tc.grad_clip, batch
            )
            self.step += 1
            if not finite:
                where = f"{recipe.describe_batch(batch)} at step {self.step} (epoch {epoch})"
                self.record.conclude("diverged", f"non-finite loss {loss.item()}{where}")
                return sums, None
            value = loss.item()
            for key in {None, recipe.loss_key(batch)}:
                total = sums.setdefault(key, [0.0, 0])
                total[0], total[1] = total[0] + value, total[1] + 1
            bar.advance(value)
            if self.step >= self.total_steps:
                return sums, "budget"
            if self.dctx.any(out_of_time(self.clock_start, tc.max_seconds), self.device):
                return sums, "truncated"  # evaluate what was learned so far, then stop
        return sums, None

    def _end_epoch(self, epoch: int, sums, stop_reason: str | None, bar) -> bool:
        """Record the epoch's curve point, validate and select (rank 0), save the resume
        point; whether training stops here (every rank agrees)."""
        loss_sum, batches = sums.get(None, [0.0, 0])
        curve_point = {
            "epoch": epoch,
            "train_loss": loss_sum / max(batches, 1),
            "steps": self.step,
            "seconds": time.perf_counter() - self.clock_start,
            **{f"train_loss/{k}": s[0] / max(s[1], 1) for k, s in sums.items() if k is not None},
            **self.recipe.curve_extras(epoch),
        }
        stop, metrics = stop_reason is not None, {}
        if self.dctx.is_main:
            metrics = self.recipe.validate()
            curve_point.update(scalars(metrics))
            stop = self._select(epoch, metrics, curve_point, bar) or stop
        self.record.curve.append(curve_point)
        self.trackers.log_point(curve_point)
        stop = self.dctx.from_main(stop, self.device)  # every rank leaves the loop together
        if self.checkpoint_dir is not None:
            # A spent budget is not done: it can be extended.
            self._save_resume_point(
                epoch, metrics, done=stop and stop_reason != "budget", truncated=stop_reason == "truncated"
            )
        if stop_reason == "truncated":
            tc = self.recipe.tc
            self.record.conclude(
                "truncated",
                f"stopped by train.max_seconds={tc.max_seconds} after {self.step} of {self.total_steps} steps",
            )
        return stop

    def _select(self, epoch: int, metrics: dict[str, Any], curve_point: dict[str, Any], bar) -> bool:
        """Rank 0's part of an epoch's end: divergence in validation, the stored curve point,
        selection (and the best checkpoint); whether to stop (diverged or target reached)."""
        recipe, record = self.recipe, self.record
        diverged = not finite_evaluation(metrics, recipe.primary_metric) and record.conclude(
            "diverged", f"non-finite validation outputs after step {self.step} (epoch {epoch})"
        )
        if self.store is not None:
            self.store.add_epoch(record.run_id, epoch, curve_point)
        bar.epoch_done(epoch, metrics.get(recipe.primary_metric))
        offered = record.status != "diverged" and self.selection.offer(metrics, epoch, self.model)
        if offered and self.checkpoint_dir is not None:
            save_checkpoint(self.checkpoint_dir, self.model, _meta(recipe, record, metrics, epoch))
            recipe.save_artifacts(self.checkpoint_dir)
        value = metrics.get(recipe.primary_metric)
        reached = recipe.target is not None and value is not None and value >= recipe.target
        return diverged or reached

    def _save_resume_point(self, epoch: int, metrics: dict[str, Any], *, done: bool, truncated: bool) -> None:
        """Write ``last/`` for the end of ``epoch`` (``done``: the run stopped on its own;
        ``truncated``: by its wall-time cap)."""
        record = self.record
        state = ResumePoint(
            epoch,
            self.step,
            time.perf_counter() - self.clock_start,
            record.started_at,
            self.selection.value,
            self.selection.metrics,
            record.curve,
            done=done,
            best_epoch=self.selection.epoch,
            truncated=truncated,
        )
        meta = _meta(self.recipe, record, metrics, epoch)
        save_resume_point(
            self.checkpoint_dir, self.model, meta, state, self.optimizer, self.scheduler, self.order_gen
        )

    def finish(self) -> None:
        """The final checks, the test scored once on the selected weights, the record ended
        and stored, the trackers finished."""
        record = self.record
        if self.point.truncated:  # a resumed run whose wall-time cap had stopped it
            record.conclude("truncated")
        record.wall_seconds = time.perf_counter() - self.clock_start
        if not finite_weights(self.model):
            record.conclude("diverged", f"non-finite weights after step {self.step}")
        self._score_test()
        # (a truncated run keeps its status whatever its test outputs)
        if record.status == "running" and not finite_evaluation(record.metrics, self.recipe.primary_metric):
            record.conclude("diverged", "non-finite test outputs from the selected weights")
        record.conclude("completed")
        record.ended_at = time.time()
        if self.store is not None:
            self.store.write_record(record)
        checkpoint = self.checkpoint_dir if self.selection.value is not None else None
        self.trackers.finish(
            record.status,
            record.metrics,
            record.state_bytes,
            None if checkpoint is None else checkpoint.absolute(),
            error=record.error,
            step=record.curve[-1].get("epoch", len(record.curve)) if record.curve else 0,
        )

    def _score_test(self) -> None:
        """Load the selected weights back and score the test set once (rank 0)."""
        record, selection = self.record, self.selection
        record.metrics = {"steps": self.step, "epochs": len(record.curve)}
        if not self.dctx.is_main or selection.value is None:
            return
        if selection.weights is None and self.checkpoint_dir is not None:  # selected before a resume
            selection.weights = read_checkpoint(self.checkpoint_dir)[0]
        if selection.weights is not None:
            self.model.load_state_dict(selection.weights)
        if record.status == "diverged":
            return
        record.metrics = {
            **self.recipe.test(),
            "validation": scalars(selection.metrics),
            "selected_epoch": selection.epoch,
            **record.metrics,
        }


def _meta(recipe: Recipe, record: RunRecord, metrics: dict, epoch: int) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "config": record.config,
        **recipe.checkpoint_meta(),
        "epoch": epoch,
        "metrics": metrics,  # the validation metrics of that epoch
    }
