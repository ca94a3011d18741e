"""Optimiser, learning-rate schedule and mixed precision shared by every trainer."""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with weight decay on matrices only: decaying norms, biases and gates hurts small
    models. A parameter marked ``_no_weight_decay = True`` is never decayed either (e.g. a
    neural memory's initial weights, which decay would pull towards a memory that forgot)."""

    def decayed(p: torch.nn.Parameter) -> bool:
        return p.dim() >= 2 and not getattr(p, "_no_weight_decay", False)

    decay = [p for p in model.parameters() if decayed(p)]
    no_decay = [p for p in model.parameters() if not decayed(p)]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # foreach: one multi-tensor kernel per group instead of a Python loop over parameters; on
    # the 2-core CPU clip + step took 0.66 ms instead of 0.82 (deltanet d64, 2 blocks), same math.
    return torch.optim.AdamW(groups, lr=lr, foreach=True)


def warmup_cosine(optimizer, total_steps: int, warmup_fraction: float):
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to zero."""
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def apply_update(model: torch.nn.Module, optimizer, scheduler, grad_clip: float) -> None:
    """One optimiser step after ``backward``: clip the gradient norm, step, advance the schedule."""
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA; nothing on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()
