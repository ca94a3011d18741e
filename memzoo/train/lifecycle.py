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
    trackers  train.trackers (memzoo.trackers) start once the record exists (a resumed run
              goes on in the tracker's run of the same id), log each curve point as it is
              appended and finish with the run's status, final metrics, state bytes and
              checkpoint path, "failed" included; a tracker that fails is reported once and
              dropped, never failing the run. A missing tracker package or an unwritable
              train.tracker_dir fails before a row exists
    test      once, at the end, on the selected weights: every stored test metric
              (accuracy, slices, per-distance accuracy, hr@10, chrF, MAE, baselines) comes
              from the selected checkpoint. ``metrics["validation"]`` keeps the validation
              metrics of that checkpoint apart, with ``selected_epoch`` and ``steps``.

Under torchrun (``dctx`` enabled) every rank runs the loop; rank 0 alone evaluates, selects,
writes files and the store, and broadcasts its stop decision.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from memzoo.errors import first_line
from memzoo.files import check_writable_folder
from memzoo.results.lease import Heartbeat, Lease
from memzoo.results.record import RunRecord, config_hash
from memzoo.trackers import Trackers, open_trackers, run_tags
from memzoo.train.distributed import Distributed
from memzoo.train.environment import git_revision
from memzoo.train.recipe import Recipe
from memzoo.train.resume import load_resume_point
from memzoo.train.run_ids import check_run_id, new_run_id
from memzoo.train.run_loop import RunLoop


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


def run_lifecycle(
    recipe: Recipe,
    *,
    store=None,
    suite: str | None = None,
    run_id: str | None = None,
    progress: bool | None = None,
    resume_from: str | Path | None = None,
    dctx: Distributed | None = None,
    device: torch.device,
) -> RunResult:
    """Run ``recipe`` under its train settings (``recipe.tc``); see the module."""
    dctx = dctx or Distributed()
    resumed, resumed_weights = load_resume_point(resume_from) if resume_from is not None else (None, None)
    recipe.prepare()  # a bad data file fails here, before a row exists
    if recipe.tc.checkpoint and dctx.is_main:  # so does an out_dir that cannot be written
        check_writable_folder(recipe.tc.out_dir, "train.out_dir")
    trackers = open_trackers(recipe.tc.trackers, recipe.tc.tracker_dir) if dctx.is_main else Trackers()
    record = new_record(recipe.record_config, recipe.task_name, recipe.layers, device, suite, run_id)
    store = store if dctx.is_main else None
    if resumed is not None:
        record.started_at, record.curve = resumed.started_at, list(resumed.curve)
    with stored_run(store, record, resumed=resumed is not None), tracked_run(trackers, record):
        run = RunLoop.begin(recipe, record, store, dctx, device, resumed, resumed_weights, trackers)
        run.train_epochs(progress)
        run.finish()
        return RunResult(record=record, model=run.model, checkpoint_dir=run.checkpoint_dir)


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
            if record.conclude("failed", f"{type(err).__name__}: {err}".splitlines()[0][:500]):
                store.write_record(record)
            raise


@contextmanager
def tracked_run(trackers: Trackers, record: RunRecord) -> Iterator[Trackers]:
    """Start ``trackers`` on ``record`` (its id, config and tags) for the block, in which
    :class:`RunLoop` logs the curve and finishes them. An exception escaping the block
    finishes them ``failed`` (or the status the run already ended with) with a one-line
    reason. A tracker's own failure is reported and dropped (:class:`Trackers`)."""
    trackers.start(record.run_id, record.config, run_tags(record.run_id, vars(record)))
    try:
        yield trackers
    except BaseException as err:
        status = "failed" if record.status == "running" else record.status
        reason = f"{type(err).__name__}: {first_line(err, 500)}"
        trackers.finish(status, record.metrics, record.state_bytes, error=record.error or reason)
        raise
