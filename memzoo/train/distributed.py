"""Data-parallel training under ``torchrun``: process group, data shards, loss weighting.

``torchrun --nproc-per-node N -m memzoo train ...`` starts N processes with ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` in their environment. :func:`session` reads them, joins the
process group (gloo for CPU, NCCL for CUDA, one GPU per local rank) and leaves it at the end.
Without those variables (or with ``WORLD_SIZE=1``) it is a no-op single-process context, and
the trainer runs exactly as before.

Contract with the trainer, per optimiser step:

- every rank draws the same global batch (same seed, same data-order generator) and computes
  on rows ``rank::world_size`` of it (:meth:`Distributed.shard`); a rank left without rows (a
  last batch smaller than the world) runs one row at weight 0, as DDP needs every rank;
- the model is wrapped in ``DistributedDataParallel`` around a module that computes the loss,
  so the gradient all-reduce runs in DDP's own backward hooks;
- each rank's loss is the mean over *its* scored positions; DDP averages gradients over
  ranks, so the rank loss is scaled by ``local_count * world_size / global_count``: the
  averaged gradient is then the gradient of the mean over the whole global batch, as in one
  process, even when shards score different numbers of positions;
- the logged loss is the all-reduced global mean, identical on every rank, so every rank takes
  the same "diverged" and "out of time" decisions and no rank waits on a collective forever.

Rank 0 alone evaluates, checkpoints and writes the store; it broadcasts its stop decision.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from memzoo.errors import ConfigError
from memzoo.metrics.classification import IGNORE_INDEX
from memzoo.train.objectives import training_loss


def env_world() -> tuple[int, int, int]:
    """``(world_size, rank, local_rank)`` from the torchrun environment; ``(1, 0, 0)`` without."""
    return (
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def is_main_process() -> bool:
    """Whether this process is rank 0 (or not under torchrun at all): the one that writes."""
    return env_world()[1] == 0


@dataclass
class Distributed:
    """This process's place in the job. ``world_size == 1``: no process group, no collectives."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The device of this rank: ``cuda:LOCAL_RANK`` for CUDA, else ``device`` unchanged."""
        if self.enabled and device.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return device

    def shard(self, rows: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global batch (indices ``[B]`` -> ``[ceil((B - rank) / N)]``)."""
        return rows[self.rank :: self.world_size] if self.enabled else rows

    def any(self, flag: bool, device: torch.device) -> bool:
        """Whether ``flag`` is true on at least one rank (a collective: call it on all ranks)."""
        if not self.enabled:
            return flag
        t = torch.tensor([float(flag)], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def from_main(self, flag: bool, device: torch.device) -> bool:
        """Rank 0's ``flag`` on every rank (a collective: call it on all ranks)."""
        if not self.enabled:
            return flag
        t = torch.tensor([float(flag)], device=device)
        dist.broadcast(t, src=0)
        return bool(t.item())


@contextmanager
def session(device: torch.device) -> Iterator[Distributed]:
    """Join the torchrun process group for the duration of a run (no-op outside torchrun).

    A process group that the caller already started is used and left open."""
    world_size, rank, local_rank = env_world()
    ctx = Distributed(world_size, rank, local_rank)
    if not ctx.enabled or dist.is_initialized():
        yield ctx
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    try:
        yield ctx
    finally:
        dist.destroy_process_group()


class _LossModule(torch.nn.Module):
    """``forward(inputs, targets, scale) -> scale * training_loss``: what DDP wraps, so the
    loss (not only the model output) is computed inside DDP's forward."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        return training_loss(self.model, inputs, targets) * scale


def make_ddp_train_step(
    model: torch.nn.Module,
    ctx: Distributed,
    head: str,
    segment_len: int | None,
    autocast: Callable[[], AbstractContextManager],
):
    """``step(inputs, targets) -> loss`` on a *global* batch: forward and backward of this
    rank's shard through DDP; the returned loss is the global-batch mean (detached, identical
    on every rank)."""
    if segment_len is not None:
        raise ConfigError(
            "train.segment_len (segmented training) is not supported under torchrun; "
            "train whole sequences (leave train.segment_len unset) or use one process"
        )
    device = next(model.parameters()).device
    ddp = torch.nn.parallel.DistributedDataParallel(
        _LossModule(model), device_ids=[device.index] if device.type == "cuda" else None
    )

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # inputs/targets: the global batch [B, ...]; this rank computes on rows rank::world_size.
        mine = ctx.shard(torch.arange(len(inputs), device=inputs.device))
        total = _scored(targets, head)  # scored positions of the whole global batch
        if len(mine) == 0:  # fewer rows than ranks: run one row at weight 0 (DDP needs every rank)
            mine, local = mine.new_zeros(1), 0.0
        else:
            local = _scored(targets[mine], head)
        scale = torch.tensor(local * ctx.world_size / max(total, 1.0), device=inputs.device)
        with autocast():
            loss = ddp(inputs[mine], targets[mine], scale)
        loss.backward()  # DDP averages the scaled gradients: the global-batch mean's gradient
        logged = loss.detach().float().reshape(1).clone()
        dist.all_reduce(logged)
        return logged[0] / ctx.world_size

    return step


def _scored(targets: torch.Tensor, head: str) -> float:
    """What the loss averages over: every value for regression, utterances for ctc (its loss
    is a mean over utterances), scored frames for multilabel, scored positions (targets !=
    -100) else."""
    if head == "ctc":
        return float(targets.shape[0])
    if head == "multilabel":
        return float((targets[..., 0] != IGNORE_INDEX).sum())
    return float(targets.numel() if head == "regress" else (targets != IGNORE_INDEX).sum())
