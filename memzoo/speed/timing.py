"""Timing primitives of ``memzoo speed``: paired medians, a matmul peak, FLOP counts, rows.

Every timed function runs after ``warmup`` calls; CUDA work is synchronised before the clock
is read. Functions measured together are timed in alternation, so a ratio between them
holds on a busy machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA), so a timer reads finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def paired_median_seconds(fns, repeats: int, warmup: int, device: torch.device) -> list[float]:
    """Median seconds of each function, timed in alternation so that load spikes on a shared
    machine hit all of them alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    sync(device)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            sync(device)
            bucket.append(time.perf_counter() - start)
    return [statistics.median(bucket) for bucket in times]


def matmul_peak_flops(device: torch.device, n: int = 4096, repeats: int = 5) -> float:
    """FLOP/s of an ``n x n`` fp32 matrix multiply on ``device`` (the MFU denominator).

    The fastest of ``repeats`` runs, not the median: a peak measured while the machine is
    busy would understate it and push MFU above 100%. n=4096, not 2048: on the 2-core CPU
    2048 ran at 139 GFLOP/s and 4096 at 175, and torch.nn.LSTM read 157 against the former."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def forward_only(module, x):
    """One forward pass of ``module`` on ``x [B, T, D]`` without autograd."""
    with torch.no_grad():
        return module(x)


def forward_backward(module, x):
    """Forward and backward of ``module`` on ``x [B, T, D]`` (gradients for x and weights)."""
    x = x.detach().requires_grad_(True)
    y, _ = module(x)
    y.float().pow(2).mean().backward()


def timed_row(
    name: str, seq_len: int, mode: str, fns, settings, device, peak: float, flops_if_uncounted: int = 0
) -> dict:
    """Time ``fns`` (the measured function first, then its reference if any) in alternation
    and return the row of the first: tokens/s, MFU and, with a reference, the ratio."""
    seconds = paired_median_seconds(fns, settings.repeats, settings.warmup, device)
    flops = count_flops(fns[0]) or flops_if_uncounted
    tokens = settings.batch_size * seq_len
    row = {
        "layer": name,
        "seq_len": seq_len,
        "mode": mode,
        "tokens_per_s": tokens / seconds[0],
        "mfu": (flops / seconds[0] / peak) if flops else None,
        "extra": {"seconds": seconds[0], "flops": flops},
    }
    if len(fns) > 1:
        row["ratio_vs_reference"] = seconds[1] / seconds[0]
        row["extra"]["reference_tokens_per_s"] = tokens / seconds[1]
    return row
