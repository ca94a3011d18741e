"""``memzoo profile``: where the time of a training run's steps goes, under ``torch.profiler``.

The run is built as ``memzoo train`` builds it from the same config and overrides: the config
validated (``memzoo.train.config``) and checked against memory, the task's data, the model,
batches and step of the single-task recipe, the lifecycle's optimiser and schedule, and the
lifecycle's own per-batch step (:func:`memzoo.train.run_loop.train_batch`). ``warmup`` steps
run first, unprofiled (allocator, caches, ``train.compile``'s compilation); then ``steps``
steps run under the profiler (CPU, plus CUDA activity on a GPU). Nothing is stored, no
checkpoint is written, no validation runs.

The result holds the profiler's table of operators (top ``rows`` by ``sort``) and the share of
the profiled wall time spent in each phase labelled by :mod:`memzoo.train.phases`: drawing
batches, forward and backward, the optimiser step (on a GPU: host-side time, the kernels run
asynchronously; ``loss.item()`` after each step waits for them, as the trainer does).
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from memzoo.errors import ConfigError
from memzoo.files import check_output_file, write_file
from memzoo.train import distributed
from memzoo.train.config import RunConfig, validate_config
from memzoo.train.environment import resolve_device
from memzoo.train.kinds import SINGLE, kind_of
from memzoo.train.optim import make_optimizer, warmup_cosine
from memzoo.train.phases import DATA, FORWARD_BACKWARD, OPTIMIZER, labelled_batches
from memzoo.train.recipes.single_task import SingleTaskRecipe
from memzoo.train.run_loop import train_batch
from memzoo.train.sizes import check_memory

#: what ``sort`` may name (attributes of the profiler's averaged events)
SORT_KEYS = (
    "self_cpu_time_total",
    "cpu_time_total",
    "self_cuda_time_total",
    "cuda_time_total",
    "self_cpu_memory_usage",
    "cpu_memory_usage",
    "self_cuda_memory_usage",
    "cuda_memory_usage",
    "count",
)
#: the phases whose share of the wall time is reported, and their names in the report
PHASE_NAMES = {DATA: "data batching", FORWARD_BACKWARD: "forward/backward", OPTIMIZER: "optimizer step"}


@dataclass
class ProfileResult:
    """``table``: the profiler's operator table; ``shares``: phase name -> fraction of the
    profiled wall time (``wall_seconds`` over ``steps`` steps); ``trace``: the Chrome trace
    written, if one was asked for."""

    table: str
    shares: dict[str, float]
    wall_seconds: float
    steps: int
    device: str
    trace: Path | None = None


def check_options(steps: int, warmup: int, rows: int, sort: str, trace: Path | None) -> None:
    """Bad options raise a one-line :class:`ConfigError` naming the option."""
    for option, value, least in (("--steps", steps, 1), ("--warmup", warmup, 0), ("--rows", rows, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{option} must be an integer >= {least}, got {value!r}")
    if sort not in SORT_KEYS:
        raise ConfigError(f"--sort must be one of {', '.join(SORT_KEYS)}; got {sort!r}")
    if trace is not None:
        check_output_file(trace, "--trace")


def _batch_stream(recipe: SingleTaskRecipe, generator: torch.Generator) -> Iterator[Any]:
    """The recipe's batches epoch after epoch (1, 2, ...), as the lifecycle draws them."""
    for epoch in itertools.count(1):
        yield from labelled_batches(recipe.batches(epoch, generator))


def profile_training(
    config: RunConfig | dict,
    *,
    steps: int = 20,
    warmup: int = 3,
    rows: int = 10,
    sort: str = "self_cpu_time_total",
    trace: Path | None = None,
) -> ProfileResult:
    """Profile ``steps`` training steps of the run ``config`` describes (see the module)."""
    check_options(steps, warmup, rows, sort, trace)
    cfg = validate_config(config)
    if kind_of(cfg.task.name) is not SINGLE:
        raise ConfigError(f"memzoo profile takes single-task runs; task {cfg.task.name!r} is not one")
    if distributed.env_world()[0] > 1:
        raise ConfigError("memzoo profile runs in one process; run it without torchrun")
    check_memory(cfg)
    tc, device = cfg.train, resolve_device(cfg.train.device)
    recipe = SingleTaskRecipe(cfg)
    recipe.prepare()
    torch.manual_seed(tc.seed)
    model = recipe.build_model(device)
    total_steps = tc.max_steps or tc.epochs * recipe.steps_per_epoch()  # the schedule the run has
    optimizer = make_optimizer(model, tc.lr, tc.weight_decay)
    scheduler = warmup_cosine(optimizer, total_steps, tc.warmup_fraction)
    batches = _batch_stream(recipe, torch.Generator().manual_seed(tc.seed))
    model.train()

    def one_step() -> None:
        loss, _ = train_batch(recipe, model, optimizer, scheduler, tc.grad_clip, next(batches))
        loss.item()  # what the lifecycle reads after every step (and a sync on a GPU)

    for _ in range(warmup):
        one_step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, profile_memory="memory" in sort) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            one_step()
        wall = time.perf_counter() - start
    averages = prof.key_averages()
    phase_us = dict.fromkeys(PHASE_NAMES, 0.0)
    for event in averages:
        if event.key in phase_us:
            phase_us[event.key] += event.cpu_time_total  # host time; 0 for a GPU-side copy
    if trace is not None:
        with tempfile.TemporaryDirectory() as scratch:  # torch writes to a path; memzoo never through a link
            prof.export_chrome_trace(f"{scratch}/trace.json")
            write_file(trace, Path(f"{scratch}/trace.json").read_bytes())
    return ProfileResult(
        table=averages.table(sort_by=sort, row_limit=rows),
        shares={PHASE_NAMES[label]: us / 1e6 / wall for label, us in phase_us.items()},
        wall_seconds=wall,
        steps=steps,
        device=str(device),
        trace=Path(trace) if trace is not None else None,
    )
