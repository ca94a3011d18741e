"""The training loop: ``memzoo.train(config) -> RunResult``.

AdamW, linear warm-up then cosine decay, gradient clipping, evaluation after each epoch on a
held-out set generated with another seed, early stop at ``train.target_accuracy``, the best
checkpoint saved with safetensors. CPU by default; CUDA with bf16 autocast when chosen or
available (``train.device=auto``). A fixed seed gives the same metrics on the same machine.

After every epoch the full training state is saved for ``--resume`` (``memzoo.train.resume``);
under ``torchrun`` the run is data-parallel with DDP (``memzoo.train.distributed``).
"""

from __future__ import annotations

import math
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from memzoo.bench.record import RunRecord, config_hash
from memzoo.errors import ConfigError
from memzoo.models import SequenceModel
from memzoo.train import distributed
from memzoo.train.checkpoint import save_checkpoint
from memzoo.train.config import RunConfig, validate_config
from memzoo.train.curriculum import Curriculum
from memzoo.train.distributed import make_ddp_train_step
from memzoo.train.environment import git_revision, resolve_device
from memzoo.train.objectives import accumulator_for, primary_metric
from memzoo.train.optim import apply_update, autocast_for, make_optimizer, warmup_cosine
from memzoo.train.progress import EpochProgress
from memzoo.train.resume import ResumePoint, load_resume_point, save_resume_point
from memzoo.train.segmented import evaluate_segmented, make_train_step, resolve_segment_len
from memzoo.train.task_metrics import (
    baseline_metrics,
    evaluation_sweep_metrics,
    trained_model_metrics,
    training_set_metrics,
)


@dataclass
class RunResult:
    """What ``train`` returns: the stored record, the trained model and its checkpoint."""

    record: RunRecord
    model: SequenceModel
    checkpoint_dir: Path | None

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def metrics(self) -> dict[str, Any]:
        return self.record.metrics


def build_model(config: RunConfig, task) -> SequenceModel:
    """The model a config describes, sized for ``task``'s vocabularies and head."""
    m = config.model
    input_dim = getattr(task, "input_dim", None)  # real-valued inputs [B, T, F]
    return SequenceModel(
        layers=m.layers,
        d_model=m.d_model,
        vocab_size=None if input_dim else task.input_vocab_size,
        input_dim=input_dim,
        head=task.head,
        num_outputs=task.output_vocab_size,
        layer_options=m.layer_options,
        mlp_ratio=m.mlp_ratio,
    )


def evaluate(
    model: SequenceModel,
    data,
    head: str,
    num_outputs: int,
    device,
    batch_size: int = 256,
    segment_len: int | None = None,
) -> dict:
    """Metrics of ``model`` on ``data`` (a TaskData), in eval mode without gradients.

    With ``segment_len`` the inputs are read segment by segment (``SegmentRunner``) and only
    the outputs at scored positions are kept."""
    if segment_len is not None:
        return evaluate_segmented(
            model, data, head, num_outputs, device, segment_len, lambda: autocast_for(device), batch_size
        )
    model.eval()
    acc = accumulator_for(head, num_outputs)
    with torch.no_grad(), autocast_for(device):
        for start in range(0, len(data.inputs), batch_size):
            rows = slice(start, start + batch_size)
            outputs, _ = model(data.inputs[rows].to(device))
            slices = {k: v[rows] for k, v in data.slices.items()}
            acc.update(outputs.float(), data.targets[rows], slices)
    return acc.compute()


def train(
    config: RunConfig | dict,
    *,
    store=None,
    suite: str | None = None,
    run_id: str | None = None,
    progress: bool | None = None,
    model: SequenceModel | None = None,
    resume_from: str | Path | None = None,
) -> RunResult:
    """Train the model ``config`` describes on its task; return the record and the model.

    Args:
        config: a ``RunConfig`` or a dict validated into one.
        store: a ``ResultsStore``; when given, the run and its curve are written as they go.
        suite: the benchmark suite this run belongs to (stored with it).
        run_id: defaults to a fresh random id.
        progress: show a progress bar; default: only when stderr is a terminal.
        model: go on training this model (e.g. continual learning) instead of building a
            fresh one; it must take the task's inputs and have at least its outputs.

    With ``train.segment_len`` (or a task that names its own ``segment_len``), batches are
    read segment by segment with truncated backpropagation (``memzoo.train.segmented``).
    A task named ``continual`` is trained phase after phase (``memzoo.train.continual``),
    one named ``multitask`` by one shared model with a head per task
    (``memzoo.train.multitask``); ``train.curriculum`` grows a task parameter stage by stage
    (``memzoo.train.curriculum``).

    ``resume_from`` (a run's ``last/`` folder, see ``memzoo.train.resume``; use
    ``resume_run``) continues that run after the epoch it saved. Under ``torchrun`` the run is
    data-parallel (``memzoo.train.distributed``): rank 0 alone evaluates and writes.
    """
    cfg = validate_config(config)
    if cfg.task.name == "continual":
        from memzoo.train.continual import train_continual_config

        return train_continual_config(
            cfg, store=store, suite=suite, run_id=run_id, progress=progress, model=model
        )
    if cfg.task.name == "multitask":
        from memzoo.train.multitask import train_multitask

        return train_multitask(
            cfg,
            store=store,
            suite=suite,
            run_id=run_id,
            progress=progress,
            model=model,
            resume_from=resume_from,
        )
    if cfg.task.name == "translate":
        from memzoo.train.seq2seq_trainer import train_from_run_config

        return train_from_run_config(
            cfg, store=store, suite=suite, run_id=run_id, progress=progress, model=model
        )
    if resume_from is not None and cfg.task.name in ("continual", "translate"):
        raise ConfigError(f"task {cfg.task.name!r} cannot be resumed; only single-task runs can")
    with distributed.session(resolve_device(cfg.train.device)) as dctx:
        return _train_task(
            cfg,
            dctx,
            store=store if dctx.is_main else None,
            suite=suite,
            run_id=run_id,
            progress=progress,
            model=model,
            resume_from=resume_from,
        )


def _train_task(cfg: RunConfig, dctx, *, store, suite, run_id, progress, model, resume_from) -> RunResult:
    """``train`` for one task in this process (one rank of ``dctx`` under torchrun)."""
    tc = cfg.train
    task = cfg.task.build()
    device = dctx.device(resolve_device(tc.device))
    resumed, weights = load_resume_point(resume_from) if resume_from is not None else (None, None)
    config_dict = cfg.model_dump(mode="json")
    record = RunRecord(
        run_id=run_id or uuid.uuid4().hex[:12],
        config=config_dict,
        config_hash=config_hash(config_dict),
        status="running",
        task=cfg.task.name,
        layers=list(cfg.model.layers),
        device=str(device),
        git_rev=git_revision(),
        suite=suite,
        started_at=resumed.started_at if resumed else time.time(),
        curve=list(resumed.curve) if resumed else [],
    )
    torch.manual_seed(tc.seed)
    train_data, test_data = task.split(tc.num_train, tc.num_test, seed=tc.seed)
    num_train = len(train_data)  # a task on a fixed data set may return its natural size
    curriculum = Curriculum(cfg, task, train_data) if tc.curriculum else None
    if store is not None:  # only once the data loaded: a bad file leaves no "running" row
        # A resumed run keeps its row: back to "running", with the curve of the epochs done.
        store.write_record(record) if resumed else store.start_run(record)
    model = (build_model(cfg, task) if model is None else _check_fits(model, task)).to(device)
    record.params = model.num_params()
    record.state_bytes = model.state_size(task.seq_len)
    segment_len = resolve_segment_len(tc, task)
    if dctx.enabled:
        train_step = make_ddp_train_step(model, dctx, task.head, segment_len, lambda: autocast_for(device))
    else:
        train_step = make_train_step(model, segment_len, tc.tbptt_segments, lambda: autocast_for(device))
    num_outputs = model.head.out_features

    optimizer = make_optimizer(model, tc.lr, tc.weight_decay)
    steps_per_epoch = math.ceil(num_train / tc.batch_size)
    scheduler = warmup_cosine(optimizer, tc.epochs * steps_per_epoch, tc.warmup_fraction)
    order_gen = torch.Generator().manual_seed(tc.seed)
    point = resumed or ResumePoint(started_at=record.started_at)
    if resumed:
        resumed.restore(model, optimizer, scheduler, order_gen, weights)
    metric_name, higher_is_better = primary_metric(task.head)
    best_value, best_metrics = point.best_value, point.best_metrics
    run_dir = Path(tc.out_dir) / record.run_id if tc.checkpoint else None
    checkpoint_dir = run_dir if dctx.is_main else None  # rank 0 alone writes files
    show = dctx.is_main and (progress if progress is not None else sys.stderr.isatty())
    start, step = time.perf_counter() - point.elapsed, point.step
    first_epoch = tc.epochs + 1 if point.done else point.epoch + 1

    with EpochProgress(tc.epochs, steps_per_epoch, enabled=show, label=record.run_id) as bar:
        for epoch in range(first_epoch, tc.epochs + 1):
            model.train()
            data = train_data if curriculum is None else curriculum.data_for(epoch)
            order = torch.randperm(len(data), generator=order_gen)
            loss_sum, batches = 0.0, 0
            for first in range(0, len(data), tc.batch_size):
                rows = order[first : first + tc.batch_size]  # under DDP the step takes its shard
                inputs, targets = data.inputs[rows].to(device), data.targets[rows].to(device)
                optimizer.zero_grad(set_to_none=True)
                loss = train_step(inputs, targets)  # forward and backward (the global mean loss)
                step += 1
                if not torch.isfinite(loss):
                    record.status = "diverged"
                    record.error = f"non-finite loss {loss.item()} at step {step} (epoch {epoch})"
                    break
                apply_update(model, optimizer, scheduler, tc.grad_clip)
                loss_sum, batches = loss_sum + loss.item(), batches + 1
                bar.advance(loss.item())
                if dctx.any(out_of_time(start, tc.max_seconds), device):
                    break  # evaluate what was learned so far, then stop
            if record.status == "diverged":
                break
            point_row = {
                "epoch": epoch,
                "train_loss": loss_sum / max(batches, 1),
                "steps": step,
                "seconds": time.perf_counter() - start,
            }
            if curriculum is not None:  # the stage this epoch trained on
                point_row.update(curriculum.point(epoch))
            stop = False
            if dctx.is_main:
                metrics = evaluate(model, test_data, task.head, num_outputs, device, segment_len=segment_len)
                point_row.update(_scalars(metrics))
                if store is not None:
                    store.add_epoch(record.run_id, epoch, point_row)
                bar.epoch_done(epoch, metrics.get(metric_name))
                value = metrics[metric_name]
                if best_value is None or (value > best_value if higher_is_better else value < best_value):
                    best_value, best_metrics = value, metrics
                    if checkpoint_dir is not None:
                        save_checkpoint(checkpoint_dir, model, _checkpoint_meta(record, task, metrics, epoch))
                        if hasattr(task, "save_artifacts"):  # e.g. a text task's tokenizer
                            task.save_artifacts(checkpoint_dir)
                stop = (higher_is_better and value >= tc.target_accuracy) or out_of_time(
                    start, tc.max_seconds
                )
            record.curve.append(point_row)
            stop = dctx.from_main(stop, device)  # every rank leaves the loop together
            if checkpoint_dir is not None:
                point = ResumePoint(
                    epoch,
                    step,
                    time.perf_counter() - start,
                    record.started_at,
                    best_value,
                    best_metrics,
                    record.curve,
                    done=stop,
                )
                save_resume_point(
                    checkpoint_dir,
                    model,
                    _checkpoint_meta(record, task, metrics, epoch),
                    point,
                    optimizer,
                    scheduler,
                    order_gen,
                )
            if stop:
                break

    record.wall_seconds = time.perf_counter() - start
    record.ended_at = time.time()
    record.metrics = {**best_metrics, **training_set_metrics(task, train_data), "epochs": len(record.curve)}
    if record.status == "running" and dctx.is_main:
        record.metrics.update(_final_model_metrics(task, model, test_data, tc, num_outputs, device))
    if record.status == "running":
        record.status = "completed"
    if store is not None:
        store.write_record(record)
    return RunResult(record=record, model=model, checkpoint_dir=checkpoint_dir)


def out_of_time(start: float, max_seconds: float | None) -> bool:
    """Whether a run started at ``start`` (perf_counter) has used its wall-time budget."""
    return max_seconds is not None and time.perf_counter() - start > max_seconds


def _check_fits(model: SequenceModel, task) -> SequenceModel:
    """``model`` if it can be trained on ``task`` (inputs, head kind, enough outputs)."""
    if model.head_kind != task.head:
        raise ConfigError(
            f"the given model has a {model.head_kind!r} head; task {task.name!r} needs {task.head!r}"
        )
    embed = model.embed
    input_dim = getattr(task, "input_dim", None)
    fits_inputs = (
        getattr(embed, "in_features", None) == input_dim
        if input_dim
        else getattr(embed, "num_embeddings", 0) >= task.input_vocab_size
    )
    if not fits_inputs or model.head.out_features < task.output_vocab_size:
        raise ConfigError(
            f"the given model does not fit task {task.name!r}: it needs "
            f"{input_dim or task.input_vocab_size} inputs and "
            f"{task.output_vocab_size} outputs"
        )
    return model


def _final_model_metrics(task, model, test_data, tc, num_outputs: int, device) -> dict:
    """What the task adds about the final model: ``accuracy_by_<setting>`` on its evaluation
    sweep (e.g. ``cross_segment_recall`` at other distances), its baselines and its
    application metrics (e.g. ``recommend``'s ``hr@10``), see ``memzoo.train.task_metrics``."""

    def evaluate_on(variant, data):
        return evaluate(
            model, data, variant.head, num_outputs, device, segment_len=resolve_segment_len(tc, variant)
        )

    return {
        **baseline_metrics(task, test_data),
        **evaluation_sweep_metrics(task, tc.num_test, tc.seed, evaluate_on),
        **trained_model_metrics(task, model, test_data),
    }


def _scalars(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float))}


def _checkpoint_meta(record: RunRecord, task, metrics: dict, epoch: int) -> dict:
    return {
        "run_id": record.run_id,
        "config": record.config,
        "input_dim": getattr(task, "input_dim", None),
        "input_vocab_size": None if getattr(task, "input_dim", None) else task.input_vocab_size,
        "output_vocab_size": task.output_vocab_size,
        "head": task.head,
        "epoch": epoch,
        "metrics": metrics,
    }
