"""Chunked delta rule as one autograd Function with a hand-written backward.

Why not plain autograd: the chunked form is a handful of large batched matmuls plus a short
loop over chunks; autograd would keep extra copies and spend most of its time in small
bookkeeping kernels. Writing the backward out keeps both passes to batched matmuls, one
triangular solve and two loops of two matmuls per chunk, writing into preallocated buffers.

Layout (chunk-major, heads folded into the batch): G = B * H, N chunks of C tokens::

    q, k: [N, G, C, Dk]   v: [N, G, C, Dv]   beta: [N, G, C]   s0: [G, Dk, Dv]

Forward, per chunk n with state S_n before it (see ``delta_rule.py`` for the derivation)::

    A = (I + strict_tril(diag(beta) K K^T))^{-1}     W = A diag(beta) K,  U~ = A diag(beta) V
    U_n = U~_n - W_n S_n,   S_{n+1} = S_n + K_n^T U_n,   O_n = Q_n S_n + tril(Q_n K_n^T) U_n

Backward, with dS_N the incoming state gradient, runs the chunks in reverse::

    dU_n = tril(Q K^T)^T dO_n + K_n dS_{n+1}
    dS_n = dS_{n+1} + Q_n^T dO_n - W_n^T dU_n
    then, batched: dW = -dU S^T; dQ, dK from the output and state terms; through the solve
    dR = A^T [dW, dU~], dL = -strict_tril(dR [W, U~]^T); through L, K beta and V beta.

Double backward is not supported (``once_differentiable``).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


def _t(x: torch.Tensor) -> torch.Tensor:
    return x.transpose(-1, -2)


class ChunkDeltaRuleFunction(torch.autograd.Function):
    """``apply(q, k, v, beta, s0) -> (o [N, G, C, Dv], s_final [G, Dk, Dv])``; see module doc."""

    @staticmethod
    def forward(ctx, q, k, v, beta, s0):
        n_chunks, groups, chunk, d_k = k.shape
        d_v = v.shape[-1]
        kb = k * beta.unsqueeze(-1)  # [N, G, C, Dk]
        vb = v * beta.unsqueeze(-1)  # [N, G, C, Dv]
        # solve_triangular reads only the strict lower triangle (unit diagonal), so K_b K^T
        # needs no masking; A is formed once and reused by both solves and the backward.
        eye = torch.eye(chunk, dtype=q.dtype, device=q.device).expand(n_chunks, groups, chunk, chunk)
        inv = torch.linalg.solve_triangular(kb @ _t(k), eye, upper=False, unitriangular=True)
        w = inv @ kb  # [N, G, C, Dk]
        u_tilde = inv @ vb  # [N, G, C, Dv]

        states = q.new_empty(n_chunks + 1, groups, d_k, d_v)  # states[n]: before chunk n
        states[0] = s0
        u = torch.empty_like(u_tilde)
        for n in range(n_chunks):
            torch.baddbmm(u_tilde[n], w[n], states[n], alpha=-1.0, out=u[n])  # U~ - W S
            torch.baddbmm(states[n], _t(k[n]), u[n], out=states[n + 1])  # S + K^T U

        scores = (q @ _t(k)).tril_()  # [N, G, C, C]
        out = q @ states[:-1]  # [N, G, C, Dv]
        out += scores @ u
        ctx.save_for_backward(q, k, v, beta, inv, w, u_tilde, u, states, scores)
        return out, states[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, d_out, d_final):
        q, k, v, beta, inv, w, u_tilde, u, states, scores = ctx.saved_tensors
        n_chunks = k.shape[0]
        d_out = torch.zeros_like(u) if d_out is None else d_out.contiguous()
        d_final = torch.zeros_like(states[0]) if d_final is None else d_final

        d_u_direct = _t(scores) @ d_out  # [N, G, C, Dv]
        d_s_direct = _t(q) @ d_out  # [N, G, Dk, Dv]
        d_states = torch.empty_like(states)  # d_states[n]: gradient wrt states[n]
        d_states[n_chunks] = d_final
        d_u = torch.empty_like(u)
        for n in range(n_chunks - 1, -1, -1):
            torch.baddbmm(d_u_direct[n], k[n], d_states[n + 1], out=d_u[n])
            carried = d_states[n + 1] + d_s_direct[n]
            torch.baddbmm(carried, _t(w[n]), d_u[n], alpha=-1.0, out=d_states[n])

        s_prev = states[:-1]  # [N, G, Dk, Dv]
        d_w = -(d_u @ _t(s_prev))  # [N, G, C, Dk]
        d_scores = (d_out @ _t(u)).tril_()  # [N, G, C, C]
        d_q = d_out @ _t(s_prev) + d_scores @ k
        d_k = _t(d_scores) @ q + u @ _t(d_states[1:])

        # Through W = A K_b and U~ = A V_b, A = L^{-1}: dR = A^T dX, dL = -dR X^T.
        d_kb = _t(inv) @ d_w
        d_vb = _t(inv) @ d_u
        d_lower = (d_kb @ _t(w) + d_vb @ _t(u_tilde)).tril_(-1).neg_()  # only L's strict part is free
        kb = k * beta.unsqueeze(-1)
        d_kb += d_lower @ k  # L = strict_tril(K_b K^T)
        d_k += _t(d_lower) @ kb
        d_k += d_kb * beta.unsqueeze(-1)
        d_beta = (d_kb * k).sum(-1) + (d_vb * v).sum(-1)
        d_v = d_vb * beta.unsqueeze(-1)
        return d_q, d_k, d_v, d_beta, d_states[0]
