"""Continual learning: train on task A, then on task B, and measure what A kept.

Not a loop of its own: the run is two single-task runs (:class:`SingleTaskRecipe` through the
one lifecycle) on the same weights, composed. The model — sized for both tasks'
vocabularies — trains on A (``accuracy_a_before``: its A test accuracy), goes on training on B,
then is scored on A again (``accuracy_a_after``) and on B (``accuracy_b``). The record holds::

    retention  = accuracy_a_after / accuracy_a_before   (1: nothing forgotten)
    forgetting = accuracy_a_before - accuracy_a_after   (catastrophic forgetting: large)
    accuracy   = (accuracy_a_after + accuracy_b) / 2    (mean final accuracy over the tasks)
    accuracy_a_after_phase = {"1": accuracy_a_before, "2": accuracy_a_after}   (a plot)

Each phase selects its checkpoint on its own validation set, as any run does. A config whose
task is ``continual`` (``task.task_a`` / ``task.task_b``, one model and one train section)
runs this through ``memzoo.fit`` and therefore through any benchmark suite.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from memzoo import tasks
from memzoo.errors import ConfigError
from memzoo.trackers import open_trackers
from memzoo.train.config import RunConfig, validate_config
from memzoo.train.environment import resolve_device
from memzoo.train.evaluation import evaluate, resolve_segment_len
from memzoo.train.lifecycle import RunResult, new_record, run_lifecycle, stored_run, tracked_run
from memzoo.train.recipes.single_task import SingleTaskRecipe, build_model


def continual_phases(config: RunConfig | dict) -> tuple[RunConfig, RunConfig]:
    """The two run configs of a ``continual`` config: its model and train sections with
    ``task_a``, then ``task_b`` as the task."""
    cfg = validate_config(config)
    if cfg.task.name != "continual":
        raise ConfigError(f"task.name must be 'continual' here, got {cfg.task.name!r}")
    data, joint = cfg.model_dump(mode="json"), cfg.task.build()
    return validate_config({**data, "task": joint.task_a}), validate_config({**data, "task": joint.task_b})


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


def train_continual(
    config_a: RunConfig | dict,
    config_b: RunConfig | dict,
    store=None,
    suite: str | None = None,
    *,
    run_id: str | None = None,
    progress: bool | None = None,
):
    """Train on A, then on B (same weights); return the record with the continual metrics.

    Both configs must describe the same model; their train sections may differ (the
    record's config then also keeps B's as ``train_b``). With ``store``, the run (one
    record, both phases' epochs in its curve) is written to it.
    """
    cfg_a, cfg_b = validate_config(config_a), validate_config(config_b)
    return run_continual(cfg_a, cfg_b, store=store, suite=suite, run_id=run_id, progress=progress).record


def _test_accuracy(model, task, cfg: RunConfig) -> float:
    """Accuracy of ``model`` on ``task``'s test set (drawn with ``cfg``'s seed and size)."""
    _, test = task.split(0, cfg.train.num_test, seed=cfg.train.seed)
    segment_len = resolve_segment_len(cfg.train, task)
    device = next(model.parameters()).device
    return evaluate(model, test, task.head, model.head.out_features, device, segment_len=segment_len)[
        "accuracy"
    ]


def _forgetting_metrics(before: float, after: float, accuracy_b: float) -> dict[str, Any]:
    """Accuracy on A after B, on B, forgetting and retention of A, and their mean accuracy."""
    return {
        "accuracy_a_after": after,
        "accuracy_b": accuracy_b,
        "forgetting": before - after,
        "retention": after / before if before > 0 else None,
        "accuracy": (after + accuracy_b) / 2,
        # Accuracy on A after each phase, keyed by phase number: the report plots it.
        "accuracy_a_after_phase": {"1": before, "2": after},
    }


def _untracked(cfg: RunConfig) -> RunConfig:
    """``cfg`` without trackers: a phase's own run is not reported apart from the record."""
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"trackers": []})})


def run_continual(
    cfg_a: RunConfig,
    cfg_b: RunConfig,
    *,
    store=None,
    suite=None,
    run_id=None,
    progress=None,
    model=None,
    record_config: dict | None = None,
) -> RunResult:
    """The two phases, composed into one record (see the module)."""
    if cfg_a.model != cfg_b.model:
        raise ConfigError("continual: both phases must describe the same model (model section)")
    task_a, task_b = cfg_a.task.build(), cfg_b.task.build()
    joint = tasks.build("continual", task_a=cfg_a.task.model_dump(), task_b=cfg_b.task.model_dump())
    device = resolve_device(cfg_a.train.device)
    config = record_config or _record_config(cfg_a, cfg_b)
    record = new_record(config, "continual", cfg_a.model.layers, device, suite, run_id)
    # The one record is what trackers see (retention included), not its two phases.
    trackers = open_trackers(cfg_a.train.trackers, cfg_a.train.tracker_dir)
    cfg_a, cfg_b = _untracked(cfg_a), _untracked(cfg_b)
    with stored_run(store, record), tracked_run(trackers, record):
        if model is None:
            torch.manual_seed(cfg_a.train.seed)  # the same start as a single-task run would build
            model = build_model(cfg_a, joint)
        record.params, record.state_bytes = model.num_params(), model.state_size(joint.seq_len)
        start, epochs = time.perf_counter(), 0
        metrics: dict[str, Any] = {}
        for phase, cfg in enumerate((cfg_a, cfg_b)):
            recipe = SingleTaskRecipe(cfg, model=model)
            result = run_lifecycle(
                recipe, run_id=f"{record.run_id}-{'ab'[phase]}", progress=progress, device=device
            )
            model = result.model
            for point in result.record.curve:  # one curve, epochs counted across both phases
                epochs += 1
                point = {**point, "epoch": epochs, "phase": phase}
                record.curve.append(point)
                trackers.log_point(point)
                if store is not None:
                    store.add_epoch(record.run_id, epochs, point)
            if result.status != "completed":
                record.conclude(result.status, f"phase {'ab'[phase]}: {result.record.error}")
                break
            if phase == 0:
                metrics["accuracy_a_before"] = _test_accuracy(model, task_a, cfg_a)
        else:
            after, accuracy_b = _test_accuracy(model, task_a, cfg_a), _test_accuracy(model, task_b, cfg_b)
            metrics.update(_forgetting_metrics(metrics["accuracy_a_before"], after, accuracy_b))
            record.conclude("completed")
    record.metrics = {**metrics, "epochs": epochs}
    record.wall_seconds = time.perf_counter() - start
    record.ended_at = time.time()
    if store is not None:
        store.write_record(record)
    trackers.finish(record.status, record.metrics, record.state_bytes, None, error=record.error, step=epochs)
    return RunResult(record=record, model=model, checkpoint_dir=None)
