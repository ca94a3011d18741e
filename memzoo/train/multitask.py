"""Multi-task training: one shared trunk, a head per task, batches of the tasks interleaved.

``memzoo.train`` sends a config whose task is ``multitask`` (:mod:`memzoo.tasks.multitask`)
here. One :class:`~memzoo.models.multi_head.MultiHeadModel` is built from the config's
``model`` section; every task trains on ``train.num_train`` examples of its own (the data a
single-task run with the same seed would see) and is scored on ``train.num_test`` held-out
ones. Each optimiser step is one batch of one task, in the order ``task.sampling`` sets;
the learning-rate schedule spans the batches of all tasks.

Metrics (per epoch in the curve, the best epoch's in ``record.metrics``)::

    accuracy              mean accuracy over the tasks scored by accuracy (lm, classify)
    accuracy/<label>      each task's accuracy; likewise f1/<label>, mae/<label>, ...
    tasks                 (final metrics only) each task's full metrics, slices included

The best epoch is the one with the highest mean accuracy (the lowest mean ``mae`` if every
task is a regression); it is saved like any checkpoint (``memzoo.load`` returns the
``MultiHeadModel``; meta ``kind: multitask`` with each task's inputs and head). A multitask
run is one process: it cannot be resumed (``--resume``) or run under ``torchrun``.
"""

from __future__ import annotations

import math
import sys
import time
import uuid
from pathlib import Path

import torch

from memzoo.bench.record import RunRecord, config_hash
from memzoo.errors import ConfigError
from memzoo.models.multi_head import MultiHeadModel, TaskIO
from memzoo.train import distributed
from memzoo.train.checkpoint import save_checkpoint
from memzoo.train.config import validate_config
from memzoo.train.environment import git_revision, resolve_device
from memzoo.train.optim import apply_update, autocast_for, make_optimizer, warmup_cosine
from memzoo.train.progress import EpochProgress
from memzoo.train.segmented import make_train_step, resolve_segment_len


def build_multi_head_model(cfg, subtasks: dict) -> MultiHeadModel:
    """The model a multitask config describes: its trunk, an embedding and head per task."""
    m = cfg.model
    return MultiHeadModel(
        layers=m.layers,
        d_model=m.d_model,
        layer_options=m.layer_options,
        mlp_ratio=m.mlp_ratio,
        tasks={label: TaskIO.of(task) for label, task in subtasks.items()},
    )


def load_multitask(weights: dict[str, torch.Tensor], meta: dict) -> MultiHeadModel:
    """A ``MultiHeadModel`` from a multitask checkpoint's weights and meta (eval mode)."""
    cfg = validate_config(meta["config"])
    m = cfg.model
    model = MultiHeadModel(
        layers=m.layers,
        d_model=m.d_model,
        layer_options=m.layer_options,
        mlp_ratio=m.mlp_ratio,
        tasks=meta["tasks"],
    )
    model.load_state_dict(weights)
    model.checkpoint_meta = meta
    return model.eval()


def batch_schedule(
    sizes: dict[str, int], batch_size: int, sampling: str, generator: torch.Generator
) -> list[tuple[str, torch.Tensor]]:
    """One epoch's ``(label, rows)`` batches: every example of every task once, each task's
    rows shuffled; tasks in turn (``round_robin``) or all batches shuffled together
    (``proportional``)."""
    per_task = []
    for label, size in sizes.items():
        order = torch.randperm(size, generator=generator)
        per_task.append([(label, order[i : i + batch_size]) for i in range(0, size, batch_size)])
    if sampling == "round_robin":
        longest = max(len(batches) for batches in per_task)
        return [batches[i] for i in range(longest) for batches in per_task if i < len(batches)]
    flat = [batch for batches in per_task for batch in batches]
    return [flat[i] for i in torch.randperm(len(flat), generator=generator).tolist()]


def evaluate_tasks(model: MultiHeadModel, subtasks: dict, test_sets: dict, tc, device) -> dict:
    """Every task's held-out metrics, flat ``<metric>/<label>`` scalars and their means."""
    from memzoo.train.trainer import evaluate

    per_task = {}
    for label, task in subtasks.items():
        view = model.view(label)
        per_task[label] = evaluate(
            view,
            test_sets[label],
            task.head,
            view.head.out_features,
            device,
            segment_len=resolve_segment_len(tc, task),
        )
    flat = {
        f"{name}/{label}": value
        for label, metrics in per_task.items()
        for name, value in metrics.items()
        if isinstance(value, (int, float))
    }
    for name in ("accuracy", "mae"):
        values = [m[name] for m in per_task.values() if name in m]
        if values:
            flat[name] = sum(values) / len(values)
    return {**flat, "tasks": per_task}


def train_multitask(cfg, *, store=None, suite=None, run_id=None, progress=None, model=None, resume_from=None):
    """``memzoo.train`` of a ``multitask`` config: a ``RunResult`` with the shared model."""
    from memzoo.train.trainer import RunResult, _scalars, out_of_time

    if resume_from is not None:
        raise ConfigError("task 'multitask' cannot be resumed; only single-task runs can")
    if distributed.env_world()[0] > 1:
        raise ConfigError("task 'multitask' trains in one process; run it without torchrun")
    tc, multi = cfg.train, cfg.task.build()
    subtasks, device = multi.subtasks, resolve_device(tc.device)
    config_dict = cfg.model_dump(mode="json")
    record = RunRecord(
        run_id=run_id or uuid.uuid4().hex[:12],
        config=config_dict,
        config_hash=config_hash(config_dict),
        status="running",
        task="multitask",
        layers=list(cfg.model.layers),
        device=str(device),
        git_rev=git_revision(),
        suite=suite,
        started_at=time.time(),
    )
    torch.manual_seed(tc.seed)
    data = multi.split_each(tc.num_train, tc.num_test, tc.seed)
    if store is not None:
        store.start_run(record)
    if model is None:
        model = build_multi_head_model(cfg, subtasks)
    elif not isinstance(model, MultiHeadModel) or model.task_io != {
        label: TaskIO.of(task) for label, task in subtasks.items()
    }:
        raise ConfigError(
            "the given model does not fit this multitask config: it must be a "
            "MultiHeadModel with the same task labels, inputs and heads"
        )
    model = model.to(device)
    record.params, record.state_bytes = model.num_params(), model.state_size(multi.seq_len)
    steps = {
        label: make_train_step(
            model.view(label), resolve_segment_len(tc, task), tc.tbptt_segments, lambda: autocast_for(device)
        )
        for label, task in subtasks.items()
    }

    sizes = {label: len(train) for label, (train, _) in data.items()}
    steps_per_epoch = sum(math.ceil(size / tc.batch_size) for size in sizes.values())
    optimizer = make_optimizer(model, tc.lr, tc.weight_decay)
    scheduler = warmup_cosine(optimizer, tc.epochs * steps_per_epoch, tc.warmup_fraction)
    order_gen = torch.Generator().manual_seed(tc.seed)
    score = "accuracy" if any(t.head != "regress" for t in subtasks.values()) else "mae"
    best_value, best_metrics = None, {}
    run_dir = Path(tc.out_dir) / record.run_id if tc.checkpoint else None
    show = progress if progress is not None else sys.stderr.isatty()
    start, step = time.perf_counter(), 0

    with EpochProgress(tc.epochs, steps_per_epoch, enabled=show, label=record.run_id) as bar:
        for epoch in range(1, tc.epochs + 1):
            model.train()
            sums = {label: [0.0, 0] for label in subtasks}  # loss sum, batches
            for label, rows in batch_schedule(sizes, tc.batch_size, multi.sampling, order_gen):
                train = data[label][0]
                optimizer.zero_grad(set_to_none=True)
                loss = steps[label](train.inputs[rows].to(device), train.targets[rows].to(device))
                step += 1
                if not torch.isfinite(loss):
                    record.status = "diverged"
                    record.error = (
                        f"non-finite loss {loss.item()} on task {label!r} at step {step} (epoch {epoch})"
                    )
                    break
                apply_update(model, optimizer, scheduler, tc.grad_clip)
                sums[label][0] += loss.item()
                sums[label][1] += 1
                bar.advance(loss.item())
                if out_of_time(start, tc.max_seconds):
                    break
            if record.status == "diverged":
                break
            total, batches = (sum(s[i] for s in sums.values()) for i in (0, 1))
            point = {
                "epoch": epoch,
                "train_loss": total / max(batches, 1),
                "steps": step,
                "seconds": time.perf_counter() - start,
                **{f"train_loss/{label}": s[0] / max(s[1], 1) for label, s in sums.items()},
            }
            tests = {label: test for label, (_, test) in data.items()}
            metrics = evaluate_tasks(model, subtasks, tests, tc, device)
            point.update(_scalars(metrics))
            record.curve.append(point)
            if store is not None:
                store.add_epoch(record.run_id, epoch, point)
            bar.epoch_done(epoch, metrics.get(score))
            value = metrics[score]
            if best_value is None or (value > best_value if score == "accuracy" else value < best_value):
                best_value, best_metrics = value, metrics
                if run_dir is not None:
                    _save(run_dir, model, record, subtasks, metrics, epoch)
            if (score == "accuracy" and value >= tc.target_accuracy) or out_of_time(start, tc.max_seconds):
                break

    record.wall_seconds = time.perf_counter() - start
    record.ended_at = time.time()
    record.metrics = {**best_metrics, "epochs": len(record.curve)}
    if record.status == "running":
        record.status = "completed"
    if store is not None:
        store.write_record(record)
    return RunResult(record=record, model=model, checkpoint_dir=run_dir)


def _save(
    run_dir, model: MultiHeadModel, record: RunRecord, subtasks: dict, metrics: dict, epoch: int
) -> None:
    meta = {
        "kind": "multitask",
        "run_id": record.run_id,
        "config": record.config,
        "tasks": {label: io.to_dict() for label, io in model.task_io.items()},
        "head": "multi",
        "epoch": epoch,
        "metrics": metrics,
    }
    save_checkpoint(run_dir, model, meta)
    for label, task in subtasks.items():
        if hasattr(task, "save_artifacts"):  # e.g. a text task's tokenizer, one folder per task
            task.save_artifacts(Path(run_dir) / "tasks" / label)
