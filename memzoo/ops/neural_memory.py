"""A neural memory that learns at test time (Titans): a 2-layer MLP updated by gradient steps.

Shape legend: B batch, H heads, T tokens, C chunk size, N = T // C complete chunks,
Dh head width, F hidden width of the memory MLP.

The memory is an MLP per (batch row, head) with a normalised residual output,

    M(x) = x + gamma * rmsnorm(W2 silu(W1 x)),     W1 [F, Dh], W2 [Dh, F], gamma [Dh]

(the weights W1, W2 are the memory; ``gamma`` is an outer parameter). Titans (Behrouz et
al. 2025, eqs. 10-14) trains it on the associative loss

    l_t(M) = ||M(k_t) - v_t||^2          (summed over the Dh features, as in eq. 12)

with a per-token learning rate ``theta_t``, a momentum ("surprise") ``eta`` and a forgetting
gate ``alpha``. Tokens are processed in chunks of C (the paper's mini-batch form, sec. 3.2):
every token's gradient is taken at the weights ``W0`` the chunk starts from, and the chunk
makes one momentum step with the *sum* of its per-token steps:

    G = sum_t theta_t grad l_t(W0)      (t over the chunk)
    S = eta * S_prev - G                (momentum: surprise that lasts)
    W = (1 - alpha) * W0 + S            (weight decay: forgetting)

``theta_t`` is per token; ``eta`` and ``alpha`` are per chunk. (The paper writes the momentum
and decay per token as well; holding them constant within a chunk is the simplification of
its parallel form and of the reference implementation, and makes a chunk one step.)

Why the normalised residual output (Titans specifies a plain MLP; TTT, Sun et al. 2024, and
the reference implementation lucidrains/titans-pytorch wrap it so): gradient descent on a
plain MLP with a fixed learning rate diverges once its weights grow, because the curvature
grows with them; in training, memories of a few chunks blew up to 1e31 within 40 steps.
After the norm, scaling ``W2`` (or the hidden activations) leaves ``M`` unchanged and shrinks
the gradient in proportion, so the inner loop cannot run away.

Reading: a token reads ``M(q_t)`` with the weights written by the last *completed* chunk
(chunk n reads the memory after chunk n - 1), so no token reads what it wrote itself.

Two implementations with the same signature, tested against each other (outputs, final
state, gradients):

- :func:`chunk_neural_memory`: per chunk, the per-token gradients are outer products written
  analytically, and their ``theta``-weighted sum is two einsums (no per-token gradient tensor
  is formed); outer gradients flow through it by ordinary autograd.
- :func:`naive_neural_memory`: token by token, each token's loss differentiated by
  ``torch.autograd.grad(..., create_graph=True)`` at the chunk's starting weights.

Gates are passed in log form for stability: ``log_eta = log(eta)``,
``log_keep = log(1 - alpha)`` (both ``<= 0``, ``[B, H, N]``, one per complete chunk);
``theta`` ``[B, H, T]`` as is.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class MLPMemory(NamedTuple):
    w1: torch.Tensor  # [B, H, F, Dh]
    w2: torch.Tensor  # [B, H, Dh, F]


_EPS = 1e-6  # inside the RMS norm of the memory's output

# Why the forms below (addcmul, matmul on transposes, everything that does not depend on the
# weights computed once for the whole sequence, the step's sign folded into theta): at the
# shapes memzoo trains, the chunk loop is bound by elementwise passes over [B, H, C, F]
# tensors, not by its matmuls, and autograd's backward repeats each pass about twice. Every
# form here is the same expression as the docstrings' with fewer passes; the naive reference
# below keeps the plain form and the tests hold the two equal.


def _normalised(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z / r, 1 / r)`` with ``r = sqrt(mean_d z^2 + eps)`` ``[..., 1]``."""
    inv_r = torch.rsqrt(z.pow(2).mean(dim=-1, keepdim=True) + _EPS)
    return z * inv_r, inv_r


def mlp_forward(mem: MLPMemory, x: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """Retrieval ``M(x) = x + gamma * rmsnorm(W2 silu(W1 x))``: ``x`` ``[B, H, N, Dh]`` ->
    ``[B, H, N, Dh]``; ``gamma`` broadcasts to ``[B, H, 1, Dh]``."""
    hidden = F.silu(x @ mem.w1.transpose(-1, -2))  # [B, H, N, F]
    normed, _ = _normalised(hidden @ mem.w2.transpose(-1, -2))  # [B, H, N, Dh]
    return torch.addcmul(x, gamma, normed)


class _ChunkTargets(NamedTuple):
    """What a chunk's step needs that does not depend on the weights (``[B, H, C, .]``)."""

    k: torch.Tensor  # [B, H, C, Dh] keys
    two_gamma_k_minus_v: torch.Tensor  # [B, H, C, Dh] 2 gamma (k - v)
    minus_theta_k: torch.Tensor  # [B, H, C, Dh] -theta_t k_t
    minus_theta: torch.Tensor  # [B, H, C, 1] -theta_t


def _targets(k, v, theta, gamma) -> _ChunkTargets:
    """:class:`_ChunkTargets` of keys/values ``[B, H, T, Dh]`` and ``theta`` ``[B, H, T]``
    (any T: computed once for a whole sequence, then split into chunks)."""
    minus_theta = -theta.unsqueeze(-1)
    return _ChunkTargets(k, (2.0 * gamma) * (k - v), minus_theta * k, minus_theta)


def _descent(mem: MLPMemory, t: _ChunkTargets, two_gamma_sq: torch.Tensor) -> MLPMemory:
    """``-sum_t theta_t grad l_t`` at ``mem`` (see :func:`chunk_gradient` for the algebra);
    ``two_gamma_sq = 2 gamma^2``."""
    h = t.k @ mem.w1.transpose(-1, -2)  # [B, H, C, F]
    sig = torch.sigmoid(h)
    a = h * sig  # silu(h)
    normed, inv_r = _normalised(a @ mem.w2.transpose(-1, -2))  # [B, H, C, Dh]
    g = torch.addcmul(t.two_gamma_k_minus_v, two_gamma_sq, normed)  # 2 gamma (k + gamma n - v)
    along = (g * normed).mean(dim=-1, keepdim=True)  # [B, H, C, 1]
    dz = torch.addcmul(g, normed, -along) * inv_r  # [B, H, C, Dh]
    silu_grad = torch.addcmul(sig + a, a, sig, value=-1.0)  # sig (1 + h (1 - sig))
    dh = (dz @ mem.w2) * silu_grad  # [B, H, C, F]
    return MLPMemory(dh.transpose(-1, -2) @ t.minus_theta_k, (dz * t.minus_theta).transpose(-1, -2) @ a)


def chunk_gradient(mem: MLPMemory, k, v, theta, gamma) -> MLPMemory:
    """``sum_t theta_t grad l_t`` at ``mem``: ``k, v`` ``[B, H, C, Dh]``, ``theta`` ``[B, H, C]``.

    With ``h = W1 k``, ``a = silu(h)``, ``z = W2 a``, ``n = z / r`` (RMS-normalised) and
    ``e = 2 (k + gamma n - v)`` (the gradient of the squared error), the error reaches z as
    ``dz = (g - n mean_d(g n)) / r`` with ``g = gamma e``; then ``dl/dW2 = dz a^T`` and
    ``dl/dW1 = ((W2^T dz) * silu'(h)) k^T``.
    """
    minus = _descent(mem, _targets(k, v, theta, gamma), 2.0 * gamma * gamma)
    return MLPMemory(-minus.w1, -minus.w2)


def _gate(log_gate: torch.Tensor) -> torch.Tensor:
    """``exp(log_gate)`` ``[B, H, ...]`` shaped to scale ``[B, H, ..., 1, 1]`` matrices."""
    return torch.exp(log_gate)[..., None, None]


def _step(mem, momentum, minus_grad, eta, keep) -> tuple[MLPMemory, MLPMemory]:
    """``S = eta S_prev - G``, ``W = keep W0 + S`` from ``-G`` and gates ``[B, H, 1, 1]``."""
    s1 = torch.addcmul(minus_grad.w1, eta, momentum.w1)
    s2 = torch.addcmul(minus_grad.w2, eta, momentum.w2)
    return MLPMemory(torch.addcmul(s1, keep, mem.w1), torch.addcmul(s2, keep, mem.w2)), MLPMemory(s1, s2)


def momentum_step(mem, momentum, grad, log_eta, log_keep) -> tuple[MLPMemory, MLPMemory]:
    """``S = eta S_prev - G``, ``W = (1 - alpha) W0 + S``; ``log_eta, log_keep`` ``[B, H]``."""
    minus_grad = MLPMemory(-grad.w1, -grad.w2)
    return _step(mem, momentum, minus_grad, _gate(log_eta), _gate(log_keep))


def chunk_update(mem, momentum, k, v, theta, log_eta, log_keep, gamma) -> tuple[MLPMemory, MLPMemory]:
    """Write one chunk: ``k, v`` ``[B, H, C, Dh]``, ``theta`` ``[B, H, C]``, ``log_eta``,
    ``log_keep`` ``[B, H]`` -> (memory, momentum)."""
    minus_grad = _descent(mem, _targets(k, v, theta, gamma), 2.0 * gamma * gamma)
    return _step(mem, momentum, minus_grad, _gate(log_eta), _gate(log_keep))


def _check(q, k, theta, log_eta, chunk_size):
    t_len = q.shape[2]
    if k.shape[2] != t_len or theta.shape[2] != t_len or log_eta.shape[2] != t_len // chunk_size:
        raise ValueError(
            f"neural memory: expected T={t_len} keys/values/theta and {t_len // chunk_size} chunk "
            f"gates, got {k.shape[2]}, {theta.shape[2]}, {log_eta.shape[2]}"
        )


def chunk_neural_memory(q, k, v, theta, log_eta, log_keep, gamma, chunk_size: int, initial_state):
    """Read and write a sequence chunk by chunk.

    Args:
        q, k, v: ``[B, H, T, Dh]`` queries, keys, values (the first token starts a chunk).
        theta: ``[B, H, T]`` per-token learning rates.
        log_eta, log_keep: ``[B, H, N]`` per-chunk log momentum and log (1 - decay).
        gamma: scale of the memory's normalised output, broadcastable to ``[B, H, 1, Dh]``.
        chunk_size: C.
        initial_state: ``(memory, momentum)``, two :class:`MLPMemory`.

    Returns ``(out [B, H, T, Dh], (memory, momentum))``; the state is the one after the last
    complete chunk (a trailing partial chunk is read but not written).
    """
    _check(q, k, theta, log_eta, chunk_size)
    mem, momentum = initial_state
    two_gamma_sq = 2.0 * gamma * gamma
    outs = []
    # Split once rather than slice per chunk: a slice's backward writes its gradient into a
    # zero tensor of the whole input, so per-chunk slices cost O(T^2 / C) in the backward
    # (measured: fill_ + copy_ were 15% of a fwd+bwd at T=1024, C=64); split's backward is one cat.
    q_chunks = q.split(chunk_size, dim=2)
    targets = zip(*(part.split(chunk_size, dim=2) for part in _targets(k, v, theta, gamma)))
    gates = zip(_gate(log_eta).unbind(2), _gate(log_keep).unbind(2))  # [B, H, 1, 1] each
    for qc in q_chunks:
        outs.append(mlp_forward(mem, qc, gamma))  # reads the previous chunk's memory
        if qc.shape[2] == chunk_size:  # a complete chunk writes (it has gates)
            chunk_targets = _ChunkTargets(*next(targets))
            mem, momentum = _step(mem, momentum, _descent(mem, chunk_targets, two_gamma_sq), *next(gates))
    out = torch.cat(outs, dim=2) if outs else torch.zeros_like(q)
    return out, (mem, momentum)


def naive_neural_memory(q, k, v, theta, log_eta, log_keep, gamma, chunk_size: int, initial_state):
    """Reference for :func:`chunk_neural_memory`: token by token, gradients by autograd."""
    _check(q, k, theta, log_eta, chunk_size)
    (w1, w2), momentum = initial_state
    # autograd.grad needs weights in a graph; a constant start is made a leaf of one.
    w1, w2 = (w if w.requires_grad else w.detach().requires_grad_() for w in (w1, w2))
    mem = MLPMemory(w1, w2)
    grad = MLPMemory(torch.zeros_like(w1), torch.zeros_like(w2))
    outs = []
    for t in range(q.shape[2]):
        outs.append(mlp_forward(mem, q[:, :, t : t + 1], gamma))
        loss_t = (mlp_forward(mem, k[:, :, t : t + 1], gamma) - v[:, :, t : t + 1]).pow(2).sum(dim=(-1, -2))
        # Each (b, h) memory's loss depends only on its own weights: one grad call serves all.
        g1, g2 = torch.autograd.grad((theta[:, :, t] * loss_t).sum(), mem, create_graph=True)
        grad = MLPMemory(grad.w1 + g1, grad.w2 + g2)
        if (t + 1) % chunk_size == 0:
            n = t // chunk_size
            mem, momentum = momentum_step(mem, momentum, grad, log_eta[:, :, n], log_keep[:, :, n])
            grad = MLPMemory(torch.zeros_like(w1), torch.zeros_like(w2))
    out = torch.cat(outs, dim=2) if outs else torch.zeros_like(q)
    return out, (mem, momentum)
