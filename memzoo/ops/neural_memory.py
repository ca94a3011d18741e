"""A neural memory that learns at test time (Titans): a 2-layer MLP updated by gradient steps.

Shape legend: B batch, H heads, C tokens of one chunk, N queries, Dh head width, F hidden
width of the memory MLP.

The memory is an MLP per (batch row, head) ``M(x) = W2 silu(W1 x)`` with ``W1 [F, Dh]`` and
``W2 [Dh, F]``. Writing a chunk of key/value pairs takes, for every token t of the chunk, the
gradient ``u_t`` of the associative loss ``l_t = mean_d (M(k_t) - v_t)^2`` at the chunk's
starting weights ``W0`` (the mini-batch form of Titans, Behrouz et al. 2025), weights it by
the token's learning rate ``theta_t`` and takes one momentum step per chunk:

    G = (1 / C) sum_t theta_t u_t
    S = eta * S_prev - G                (momentum: "surprise")
    W = (1 - alpha) * W0 + S            (weight decay: forgetting)

``theta_t`` is per token, ``eta`` and ``alpha`` per chunk (all data-dependent in the layer).
The mean over the chunk and over Dh keeps the step size independent of C and Dh, which is
what keeps the inner loop stable for ``theta <= 1``.

``chunk_update`` writes the gradients analytically (no per-token gradient tensors are
formed), so the outer gradients flow through it by ordinary autograd;
``naive_chunk_update`` is the reference that gets ``G`` from
``torch.autograd.grad(..., create_graph=True)``.

Gates are passed in log form for stability: ``log_eta = log(eta)``,
``log_keep = log(1 - alpha)`` (both ``<= 0``, ``[B, H]``); ``theta`` ``[B, H, C]`` as is.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class MLPMemory(NamedTuple):
    w1: torch.Tensor  # [B, H, F, Dh]
    w2: torch.Tensor  # [B, H, Dh, F]


def mlp_forward(mem: MLPMemory, x: torch.Tensor) -> torch.Tensor:
    """Retrieval ``M(x)``: ``x`` ``[B, H, N, Dh]`` -> ``[B, H, N, Dh]``."""
    hidden = F.silu(torch.einsum("bhfd,bhnd->bhnf", mem.w1, x))  # [B, H, N, F]
    return torch.einsum("bhdf,bhnf->bhnd", mem.w2, hidden)


def chunk_update(
    mem: MLPMemory,
    momentum: MLPMemory,
    k: torch.Tensor,
    v: torch.Tensor,
    theta: torch.Tensor,
    log_eta: torch.Tensor,
    log_keep: torch.Tensor,
) -> tuple[MLPMemory, MLPMemory]:
    """Write one chunk: ``k, v`` ``[B, H, C, Dh]``, ``theta`` ``[B, H, C]``, ``log_eta``,
    ``log_keep`` ``[B, H]`` -> (memory, momentum).

    The per-token gradients of ``l_t = mean_d (W2 silu(W1 k_t) - v_t)^2`` at the starting
    weights are outer products: ``e = 2 (M(k) - v) / Dh``, ``dW2 = e a^T`` with
    ``a = silu(h)``, ``h = W1 k``, and ``dW1 = (W2^T e * silu'(h)) k^T``; their
    ``theta_t / C``-weighted sum is two einsums.
    """
    chunk, dim = k.shape[2], k.shape[3]
    h = torch.einsum("bhfd,bhcd->bhcf", mem.w1, k)  # [B, H, C, F]
    sig = torch.sigmoid(h)
    a = h * sig  # silu(h)
    err = (2.0 / dim) * (torch.einsum("bhdf,bhcf->bhcd", mem.w2, a) - v)  # [B, H, C, Dh]
    dh = torch.einsum("bhdf,bhcd->bhcf", mem.w2, err) * sig * (1 + h * (1 - sig))  # [B, H, C, F]
    coef = theta / chunk  # [B, H, C]
    g1 = torch.einsum("bhc,bhcf,bhcd->bhfd", coef, dh, k)  # [B, H, F, Dh]
    g2 = torch.einsum("bhc,bhcd,bhcf->bhdf", coef, err, a)  # [B, H, Dh, F]
    eta = torch.exp(log_eta)[..., None, None]  # [B, H, 1, 1]
    keep = torch.exp(log_keep)[..., None, None]
    s1, s2 = eta * momentum.w1 - g1, eta * momentum.w2 - g2
    return MLPMemory(keep * mem.w1 + s1, keep * mem.w2 + s2), MLPMemory(s1, s2)


def naive_chunk_update(mem, momentum, k, v, theta, log_eta, log_keep):
    """Reference for :func:`chunk_update`: the chunk loss differentiated by autograd."""
    w1, w2 = (w if w.requires_grad else w.detach().requires_grad_() for w in mem)
    chunk = k.shape[2]
    per_token = (mlp_forward(MLPMemory(w1, w2), k) - v).pow(2).mean(dim=-1)  # [B, H, C]
    # Each (b, h) memory's loss depends only on its own weights: one grad call serves all.
    loss = (theta * per_token).sum() / chunk
    g1, g2 = torch.autograd.grad(loss, (w1, w2), create_graph=True)
    eta = torch.exp(log_eta)[..., None, None]
    keep = torch.exp(log_keep)[..., None, None]
    s1 = eta * momentum.w1 - g1
    s2 = eta * momentum.w2 - g2
    return MLPMemory(keep * w1 + s1, keep * w2 + s2), MLPMemory(s1, s2)
