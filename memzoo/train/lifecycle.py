"""The one run lifecycle: what every training run does, whatever its kind.

:func:`run_lifecycle` drives a :class:`~memzoo.train.recipe.Recipe` through::

    record    a RunRecord, stored as "running" once the data has loaded, held under this
              process's Lease (renewed by a Heartbeat) until it is finished; any failure
              after that marks it "failed" with a one-line reason. A process killed outright
              leaves the row to its dead lease: it reads "interrupted", and ``--resume``
              (``resume_from``) takes it over
    seed      torch.manual_seed(train.seed) before the model is built
    budget    train.max_steps optimiser steps (or train.epochs passes over the data); the
              schedule spans the budget. train.max_seconds is only a safety cap: a run it
              stops is stored "truncated", keeps its step count, and the report leaves it out
              of result tables. Same config and seed -> same stored metrics, on an idle or a
              busy machine, as long as no cap stops it.
    divergence a non-finite loss, non-finite weights after the last step, or non-finite model
              outputs (or primary metric) in a validation or the test ends the run "diverged"
    progress  one rich bar over the steps (when asked or stderr is a terminal)
    evaluate  after every epoch (and when the budget ends mid-epoch) on the *validation* set;
              the curve holds one point per evaluation
    select    the best validation value of the recipe's primary metric: its weights are kept
              (in memory, and as the checkpoint in <out_dir>/<run_id>/ when train.checkpoint)
    resume    after every evaluation <run_dir>/last/ holds the full training state
              (``memzoo.train.resume``); ``resume_from`` continues from it exactly
    test      once, at the end, on the selected weights: every stored test metric
              (accuracy, slices, per-distance accuracy, hr@10, chrF, MAE, baselines) comes
              from the selected checkpoint. ``metrics["validation"]`` keeps the validation
              metrics of that checkpoint apart, with ``selected_epoch`` and ``steps``.

Under torchrun (``dctx`` enabled) every rank runs the loop; rank 0 alone evaluates, selects,
writes files and the store, and broadcasts its stop decision.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.profiler import record_function

from memzoo.files import check_writable_folder
from memzoo.results.lease import Heartbeat, Lease
from memzoo.results.record import RunRecord, config_hash
from memzoo.train.checkpoint import read_checkpoint, save_checkpoint
from memzoo.train.distributed import Distributed
from memzoo.train.environment import git_revision
from memzoo.train.optim import apply_update, make_optimizer, warmup_cosine
from memzoo.train.phases import FORWARD_BACKWARD, OPTIMIZER, labelled_batches
from memzoo.train.progress import EpochProgress
from memzoo.train.recipe import Recipe
from memzoo.train.resume import ResumePoint, load_resume_point, save_resume_point
from memzoo.train.run_ids import check_run_id, make_run_folder, new_run_id
from memzoo.train.segmented import NON_FINITE


@dataclass
class RunResult:
    """What a run returns: the stored record, the trained model (the selected weights) and
    the folder of its best checkpoint (None without ``train.checkpoint``)."""

    record: RunRecord
    model: torch.nn.Module
    checkpoint_dir: Path | None
    task: Any = None

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def metrics(self) -> dict[str, Any]:
        return self.record.metrics


def new_record(
    config: dict[str, Any], task: str, layers: list[str], device, suite: str | None, run_id: str | None
) -> RunRecord:
    """A fresh ``running`` record of a run of ``config`` (a JSON-able dict)."""
    return RunRecord(
        run_id=check_run_id(run_id) if run_id is not None else new_run_id(),
        config=config,
        config_hash=config_hash(config),
        status="running",
        task=task,
        layers=list(layers),
        device=str(device),
        git_rev=git_revision(),
        suite=suite,
        started_at=time.time(),
    )


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


class _Selection:
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


def run_lifecycle(
    recipe: Recipe,
    tc,
    *,
    store=None,
    suite: str | None = None,
    run_id: str | None = None,
    progress: bool | None = None,
    resume_from: str | Path | None = None,
    dctx: Distributed | None = None,
    device: torch.device,
) -> RunResult:
    """Run ``recipe`` under the train settings ``tc`` (a ``TrainConfig``); see the module."""
    dctx = dctx or Distributed()
    resumed, resumed_weights = load_resume_point(resume_from) if resume_from is not None else (None, None)
    recipe.prepare()  # a bad data file fails here, before a row exists
    if tc.checkpoint and dctx.is_main:  # so does an out_dir that cannot be written
        check_writable_folder(tc.out_dir, "train.out_dir")
    record = new_record(recipe.record_config, recipe.task_name, recipe.layers, device, suite, run_id)
    store = store if dctx.is_main else None
    if resumed is not None:
        record.started_at, record.curve = resumed.started_at, list(resumed.curve)
    with stored_run(store, record, resumed=resumed is not None):
        return _run(recipe, tc, record, store, progress, resumed, resumed_weights, dctx, device)


@contextmanager
def stored_run(store, record: RunRecord, *, resumed: bool = False) -> Iterator[None]:
    """Hold ``record``'s row ``running`` in ``store`` (``None``: no store) while the block runs,
    under this process's :class:`Lease` renewed by a :class:`Heartbeat`, so a process killed
    outright leaves a row that reads ``interrupted``. An exception escaping the block stores
    the row ``failed`` with a one-line reason (a row is never left ``running``).

    A resumed run keeps its row: back to ``running`` with the curve of the epochs done
    (refused while another live process still holds it)."""
    if store is None:
        yield
        return
    lease = Lease()
    store.write_record(record, lease) if resumed else store.start_run(record, lease)
    with Heartbeat(store, lease):
        try:
            yield
        except BaseException as err:
            if record.status == "running":
                record.status, record.ended_at = "failed", time.time()
                record.error = f"{type(err).__name__}: {err}".splitlines()[0][:500]
                store.write_record(record)
            raise


def _run(recipe, tc, record, store, progress, resumed, resumed_weights, dctx, device) -> RunResult:
    torch.manual_seed(tc.seed)
    model = recipe.build_model(device)
    record.params = sum(p.numel() for p in model.parameters())
    record.state_bytes = recipe.state_bytes()
    steps_per_epoch = recipe.steps_per_epoch()
    total_steps = tc.max_steps or tc.epochs * steps_per_epoch
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    optimizer = make_optimizer(model, tc.lr, tc.weight_decay)
    scheduler = warmup_cosine(optimizer, total_steps, tc.warmup_fraction)
    order_gen = torch.Generator().manual_seed(tc.seed)
    point = resumed or ResumePoint(started_at=record.started_at)
    if resumed is not None:
        resumed.restore(model, optimizer, scheduler, order_gen, resumed_weights)
    selection = _Selection(recipe, point)
    checkpoint_dir = None  # rank 0 alone writes files
    if tc.checkpoint and dctx.is_main:
        checkpoint_dir = make_run_folder(tc.out_dir, record.run_id)
    show = dctx.is_main and (progress if progress is not None else sys.stderr.isatty())
    start, step = time.perf_counter() - point.elapsed, point.step
    first_epoch = num_epochs + 1 if point.done else point.epoch + 1

    with EpochProgress(total_steps, enabled=show, label=record.run_id) as bar:
        for epoch in range(first_epoch, num_epochs + 1):
            model.train()
            sums: dict[str | None, list[float]] = {}
            stop_reason = None
            for batch in labelled_batches(recipe.batches(epoch, order_gen)):  # profiler labels: phases.py
                loss, finite = train_batch(recipe, model, optimizer, scheduler, tc.grad_clip, batch)
                step += 1
                if not finite:
                    record.status = "diverged"
                    record.error = (
                        f"non-finite loss {loss.item()}{recipe.describe_batch(batch)} at step {step} "
                        f"(epoch {epoch})"
                    )
                    break
                value = loss.item()
                for key in {None, recipe.loss_key(batch)}:
                    total = sums.setdefault(key, [0.0, 0])
                    total[0], total[1] = total[0] + value, total[1] + 1
                bar.advance(value)
                if step >= total_steps:
                    stop_reason = "budget"
                    break
                if dctx.any(out_of_time(start, tc.max_seconds), device):
                    stop_reason = "truncated"
                    break  # evaluate what was learned so far, then stop
            if record.status == "diverged":
                break
            loss_sum, batches = sums.get(None, [0.0, 0])
            curve_point = {
                "epoch": epoch,
                "train_loss": loss_sum / max(batches, 1),
                "steps": step,
                "seconds": time.perf_counter() - start,
                **{f"train_loss/{k}": s[0] / max(s[1], 1) for k, s in sums.items() if k is not None},
                **recipe.curve_extras(epoch),
            }
            stop, metrics = stop_reason is not None, {}
            if dctx.is_main:
                metrics = recipe.validate()
                if record.status == "running" and not finite_evaluation(metrics, recipe.primary_metric):
                    record.status = "diverged"
                    record.error = f"non-finite validation outputs after step {step} (epoch {epoch})"
                    stop = True
                curve_point.update(scalars(metrics))
                if store is not None:
                    store.add_epoch(record.run_id, epoch, curve_point)
                bar.epoch_done(epoch, metrics.get(recipe.primary_metric))
                offered = record.status != "diverged" and selection.offer(metrics, epoch, model)
                if offered and checkpoint_dir is not None:
                    _save_best(checkpoint_dir, model, recipe, record, metrics, epoch)
                value = metrics.get(recipe.primary_metric)
                reached = recipe.target is not None and value is not None and value >= recipe.target
                stop = stop or reached
            record.curve.append(curve_point)
            stop = dctx.from_main(stop, device)  # every rank leaves the loop together
            if checkpoint_dir is not None:
                state = ResumePoint(
                    epoch,
                    step,
                    time.perf_counter() - start,
                    record.started_at,
                    selection.value,
                    selection.metrics,
                    record.curve,
                    done=stop and stop_reason != "budget",  # a spent budget can be extended
                    best_epoch=selection.epoch,
                    truncated=stop_reason == "truncated",
                )
                meta = _meta(recipe, record, metrics, epoch)
                save_resume_point(checkpoint_dir, model, meta, state, optimizer, scheduler, order_gen)
            if stop_reason == "truncated" and record.status == "running":
                record.status = "truncated"
                record.error = (
                    f"stopped by train.max_seconds={tc.max_seconds} after {step} of {total_steps} steps"
                )
            if stop:
                break
    if resumed is not None and resumed.truncated and record.status == "running":
        record.status = "truncated"
    record.wall_seconds = time.perf_counter() - start
    if record.status != "diverged" and not finite_weights(model):
        record.status, record.error = "diverged", f"non-finite weights after step {step}"
    _finish(recipe, record, model, selection, checkpoint_dir, dctx, step)
    if record.status == "running" and not finite_evaluation(record.metrics, recipe.primary_metric):
        record.status, record.error = "diverged", "non-finite test outputs from the selected weights"
    if record.status == "running":
        record.status = "completed"
    record.ended_at = time.time()
    if store is not None:
        store.write_record(record)
    return RunResult(record=record, model=model, checkpoint_dir=checkpoint_dir)


def _finish(recipe, record, model, selection: _Selection, checkpoint_dir, dctx, step: int) -> None:
    """Load the selected weights back and score the test set once (rank 0)."""
    record.metrics = {"steps": step, "epochs": len(record.curve)}
    if not dctx.is_main or selection.value is None:
        return
    if selection.weights is None and checkpoint_dir is not None:  # selected before a resume
        selection.weights = read_checkpoint(checkpoint_dir)[0]
    if selection.weights is not None:
        model.load_state_dict(selection.weights)
    if record.status == "diverged":
        return
    record.metrics = {
        **recipe.test(),
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


def _save_best(directory: Path, model, recipe: Recipe, record: RunRecord, metrics: dict, epoch: int) -> None:
    save_checkpoint(directory, model, _meta(recipe, record, metrics, epoch))
    recipe.save_artifacts(directory)
