"""Helpers for the memory contract: whole == chunked == token by token."""

from __future__ import annotations

import torch

from memzoo.layers.base import state_tensors


def run_whole(module, x):
    return module(x)


def run_chunked(module, x, split_points):
    """Run ``x`` [B, T, ...] in chunks cut at ``split_points`` (sorted, inside (0, T))."""
    bounds = [0, *split_points, x.shape[1]]
    state, outs = None, []
    for a, b in zip(bounds[:-1], bounds[1:]):
        y, state = module(x[:, a:b], state)
        outs.append(y)
    return torch.cat(outs, dim=1), state


def run_steps(module, x):
    return run_chunked(module, x, list(range(1, x.shape[1])))


def max_rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max(|b|, tiny): the contract's tolerance measure."""
    if a.shape != b.shape:
        return float("inf")
    if a.numel() == 0:
        return 0.0
    scale = b.abs().max().clamp_min(1e-6)
    return ((a - b).abs().max() / scale).item()


def assert_states_close(s1, s2, tol=1e-4):
    t1, t2 = state_tensors(s1), state_tensors(s2)
    assert len(t1) == len(t2), "state structure differs between modes"
    for i, (a, b) in enumerate(zip(t1, t2)):
        assert a.shape == b.shape, f"state tensor {i}: shape {tuple(a.shape)} != {tuple(b.shape)}"
        err = max_rel_err(a, b)
        assert err <= tol, f"state tensor {i}: max relative error {err:.2e} > {tol}"


def assert_outputs_close(y1, y2, tol=1e-4):
    err = max_rel_err(y1, y2)
    assert err <= tol, f"outputs: max relative error {err:.2e} > {tol}"
