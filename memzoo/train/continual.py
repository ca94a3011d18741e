"""Continual learning: train on task A, then on task B, and measure what A kept.

``train_continual(config_a, config_b)`` trains one model — sized for both tasks' vocabularies
— with :func:`memzoo.train.train` on A, evaluates it on A's held-out data
(``accuracy_a_before``), goes on training the same weights on B, then evaluates on A again
(``accuracy_a_after``) and on B (``accuracy_b``). The run's record holds, as first-class
metrics::

    retention  = accuracy_a_after / accuracy_a_before   (1: nothing forgotten)
    forgetting = accuracy_a_before - accuracy_a_after   (catastrophic forgetting: large)
    accuracy   = (accuracy_a_after + accuracy_b) / 2    (mean final accuracy over the tasks)
    accuracy_a_after_phase = {"1": accuracy_a_before, "2": accuracy_a_after}   (a plot)

A config whose task is ``continual`` (``task.task_a`` / ``task.task_b``, one model and one
train section) runs this through ``memzoo.train`` and therefore through any benchmark suite.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import torch

from memzoo.bench.record import RunRecord, config_hash
from memzoo.errors import ConfigError
from memzoo.train.config import RunConfig, validate_config
from memzoo.train.environment import git_revision, resolve_device
from memzoo.train.segmented import resolve_segment_len


def continual_phases(config: RunConfig | dict) -> tuple[RunConfig, RunConfig]:
    """The two run configs of a ``continual`` config: its model and train sections with
    ``task_a``, then ``task_b`` as the task."""
    cfg = validate_config(config)
    if cfg.task.name != "continual":
        raise ConfigError(f"task.name must be 'continual' here, got {cfg.task.name!r}")
    data, joint = cfg.model_dump(mode="json"), cfg.task.build()
    phase_a = validate_config({**data, "task": joint.task_a})
    return phase_a, validate_config({**data, "task": joint.task_b})


def train_continual(
    config_a: RunConfig | dict,
    config_b: RunConfig | dict,
    store=None,
    suite: str | None = None,
    *,
    run_id: str | None = None,
    progress: bool | None = None,
) -> RunRecord:
    """Train on A, then on B (same weights); return the record with the continual metrics.

    Both configs must describe the same model; their train sections may differ (the
    record's config then also keeps B's as ``train_b``). With ``store``, the run (one
    record, both phases' epochs in its curve) is written to it.
    """
    cfg_a, cfg_b = validate_config(config_a), validate_config(config_b)
    return _run(cfg_a, cfg_b, store, suite, run_id, progress, None, None).record


def train_continual_config(cfg: RunConfig, *, store=None, suite=None, run_id=None, progress=None, model=None):
    """``memzoo.train`` of a ``continual`` config: a ``RunResult`` whose record is stored
    under the config itself (so a suite recognises the run when resuming)."""
    cfg_a, cfg_b = continual_phases(cfg)
    return _run(cfg_a, cfg_b, store, suite, run_id, progress, model, cfg.model_dump(mode="json"))


def _record_config(cfg_a: RunConfig, cfg_b: RunConfig) -> dict[str, Any]:
    a, b = cfg_a.model_dump(mode="json"), cfg_b.model_dump(mode="json")
    config = {
        "task": {"name": "continual", "task_a": a["task"], "task_b": b["task"]},
        "model": a["model"],
        "train": a["train"],
    }
    if b["train"] != a["train"]:
        config["train_b"] = b["train"]
    return config


def _run(cfg_a, cfg_b, store, suite, run_id, progress, model, record_config):
    from memzoo import tasks
    from memzoo.train.trainer import RunResult, build_model, evaluate, train

    if cfg_a.model != cfg_b.model:
        raise ConfigError("continual: both phases must describe the same model (model section)")
    task_a, task_b = cfg_a.task.build(), cfg_b.task.build()
    joint = tasks.build("continual", task_a=cfg_a.task.model_dump(), task_b=cfg_b.task.model_dump())
    config = record_config or _record_config(cfg_a, cfg_b)
    record = RunRecord(
        run_id=run_id or uuid.uuid4().hex[:12],
        config=config,
        config_hash=config_hash(config),
        status="running",
        task="continual",
        layers=list(cfg_a.model.layers),
        device=str(resolve_device(cfg_a.train.device)),
        git_rev=git_revision(),
        suite=suite,
        started_at=time.time(),
    )
    if store is not None:
        store.start_run(record)
    if model is None:
        torch.manual_seed(cfg_a.train.seed)  # the same start as train() would build
        model = build_model(cfg_a, joint)
    record.params, record.state_bytes = model.num_params(), model.state_size(joint.seq_len)

    def accuracy_on(task, cfg) -> float:
        _, test = task.split(cfg.train.num_train, cfg.train.num_test, seed=cfg.train.seed)
        device = next(model.parameters()).device
        return evaluate(
            model,
            test,
            task.head,
            model.head.out_features,
            device,
            segment_len=resolve_segment_len(cfg.train, task),
        )["accuracy"]

    start, epochs = time.perf_counter(), 0
    metrics: dict[str, Any] = {}
    for phase, cfg in enumerate((cfg_a, cfg_b)):
        result = train(cfg, progress=progress, model=model, run_id=f"{record.run_id}-{'ab'[phase]}")
        model = result.model
        for point in result.record.curve:  # one curve, epochs counted across both phases
            epochs += 1
            point = {**point, "epoch": epochs, "phase": phase}
            record.curve.append(point)
            if store is not None:
                store.add_epoch(record.run_id, epochs, point)
        if result.status != "completed":
            record.status = result.status
            record.error = f"phase {'ab'[phase]}: {result.record.error}"
            break
        if phase == 0:
            metrics["accuracy_a_before"] = accuracy_on(task_a, cfg_a)
    else:
        before, after = metrics["accuracy_a_before"], accuracy_on(task_a, cfg_a)
        metrics.update(
            accuracy_a_after=after,
            accuracy_b=accuracy_on(task_b, cfg_b),
            forgetting=before - after,
            retention=after / before if before > 0 else None,
        )
        metrics["accuracy"] = (after + metrics["accuracy_b"]) / 2
        # Accuracy on A after each phase, keyed by phase number: the report plots it.
        metrics["accuracy_a_after_phase"] = {"1": before, "2": after}
        record.status = "completed"
    record.metrics = {**metrics, "epochs": epochs}
    record.wall_seconds = time.perf_counter() - start
    record.ended_at = time.time()
    if store is not None:
        store.write_record(record)
    return RunResult(record=record, model=model, checkpoint_dir=None)
