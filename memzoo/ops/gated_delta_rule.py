"""The gated delta rule (Gated DeltaNet, Yang et al. 2024), three forms.

Recurrence with a data-dependent decay ``alpha_t = exp(g_t)`` in (0, 1), state ``S: [Dk, Dv]``::

    u_t = beta_t (v_t - alpha_t S_{t-1}^T k_t)
    S_t = alpha_t S_{t-1} + k_t u_t^T    # = alpha_t (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T
    o_t = S_t^T q_t

The ops take the decay as its log ``g_t <= 0`` so products of decays are sums.

Chunked form. Inside a chunk starting from state S, let ``gamma_i = g_1 + ... + g_i`` (sums
local to the chunk, so they stay small) and ``D_ij = exp(gamma_i - gamma_j)`` for j <= i (each
<= 1; computed from the difference, never as a ratio of two exponentials). Then::

    (I + strict_tril(diag(beta) (K K^T * D))) U = diag(beta) V - diag(beta exp(gamma)) K S
    W = A diag(beta exp(gamma)) K,  U~ = A diag(beta) V      (all chunks at once)
    U = U~ - W S                                              (sequential over chunks)
    O = diag(exp(gamma)) Q S + (Q K^T * D * causal_incl) U
    S_next = exp(gamma_C) S + (diag(exp(gamma_C - gamma)) K)^T U

Shape legend: B batch, H heads, T time, Dk key dim, Dv value dim, N chunks, C chunk size.
"""

from __future__ import annotations

import torch
from einops import rearrange

from memzoo.ops._chunking import (
    causal_mask,
    check_chunk_size,
    check_per_token,
    check_qkv,
    from_chunks,
    to_chunks,
    zero_state,
)
from memzoo.ops.delta_rule import delta_rule_step


def naive_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    g: torch.Tensor,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference recurrence, one token at a time.

    Args:
        q, k: ``[B, H, T, Dk]`` (k L2-normalised by the caller).
        v: ``[B, H, T, Dv]``.
        beta: ``[B, H, T]`` write strength.
        g: ``[B, H, T]`` log decay, ``alpha_t = exp(g_t)``.
        initial_state: ``[B, H, Dk, Dv]`` or None (zeros).

    Returns:
        ``(o [B, H, T, Dv], S_T [B, H, Dk, Dv])``.
    """
    _, _, _, d_k, d_v = check_qkv(q, k, v)
    check_per_token("beta", beta, q)
    check_per_token("g", g, q)
    state = zero_state(q, d_k, d_v) if initial_state is None else initial_state
    outs = []
    # unbind, not indexing: indexing's backward fills a full-size zero gradient per token.
    tokens = zip(q.unbind(2), k.unbind(2), v.unbind(2), beta.unbind(2), g.unbind(2))
    for q_t, k_t, v_t, b_t, g_t in tokens:
        o_t, state = gated_delta_rule_step(q_t, k_t, v_t, b_t, g_t, state)
        outs.append(o_t)
    return torch.stack(outs, dim=2), state


def gated_delta_rule_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    g: torch.Tensor,
    state: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoding step: ``q, k: [B, H, Dk]``, ``v: [B, H, Dv]``, ``beta, g: [B, H]``,
    ``state: [B, H, Dk, Dv]``. Returns ``(o [B, H, Dv], new_state [B, H, Dk, Dv])``."""
    decayed = torch.exp(g)[..., None, None] * state  # decay first: alpha_t S_{t-1}
    return delta_rule_step(q, k, v, beta, decayed)


def chunk_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    g: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked parallel form; same arguments and results as ``naive_gated_delta_rule``.

    Padding tokens have ``beta = 0`` and ``g = 0`` (no write, no decay), so they leave the
    state as it was.
    """
    check_chunk_size(chunk_size)
    _, _, seq_len, d_k, d_v = check_qkv(q, k, v)
    check_per_token("beta", beta, q)
    check_per_token("g", g, q)
    state = zero_state(q, d_k, d_v) if initial_state is None else initial_state
    qc, kc, vc = (to_chunks(x, chunk_size) for x in (q, k, v))  # [B, H, N, C, D]
    bc = to_chunks(beta, chunk_size).unsqueeze(-1)  # [B, H, N, C, 1]
    gamma = to_chunks(g, chunk_size).cumsum(dim=-1)  # [B, H, N, C], chunk-local log decay

    incl = causal_mask(chunk_size, q.device)
    strict = causal_mask(chunk_size, q.device, strict=True)
    # exp(gamma_i - gamma_j) for j <= i, else 0; the where() keeps exp off positive exponents.
    log_decay = gamma.unsqueeze(-1) - gamma.unsqueeze(-2)  # [B, H, N, C, C]
    decay = torch.exp(torch.where(incl, log_decay, torch.full_like(log_decay, -torch.inf)))

    kk = ((kc * bc) @ kc.transpose(-1, -2)) * decay  # [B, H, N, C, C]
    eye = torch.eye(chunk_size, dtype=q.dtype, device=q.device)
    lower = kk.masked_fill(~strict, 0.0) + eye
    from_start = torch.exp(gamma).unsqueeze(-1)  # [B, H, N, C, 1]: decay since chunk start
    rhs = torch.cat([kc * (bc * from_start), vc * bc], dim=-1)  # [B, H, N, C, Dk + Dv]
    solved = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
    w, u_tilde = solved.split([d_k, d_v], dim=-1)

    to_end = torch.exp(gamma[..., -1:] - gamma).unsqueeze(-1)  # [B, H, N, C, 1]: decay to chunk end
    # unbind per chunk (see delta_rule.py: indexing would make the backward O(N^2)).
    w_n = rearrange(w, "b h n c k -> n b h c k").unbind(0)
    u_n = rearrange(u_tilde, "b h n c v -> n b h c v").unbind(0)
    kt_n = rearrange(kc * to_end, "b h n c k -> n b h k c").unbind(0)
    chunk_decay = rearrange(torch.exp(gamma[..., -1]), "b h n -> n b h 1 1").unbind(0)
    starts, pseudo_values = [], []
    for w_c, u_c, kt_c, decay_c in zip(w_n, u_n, kt_n, chunk_decay):
        starts.append(state)
        u = u_c - w_c @ state  # [B, H, C, Dv]
        pseudo_values.append(u)
        state = decay_c * state + kt_c @ u  # [B, H, Dk, Dv]

    s_prev = torch.stack(starts, dim=2)  # [B, H, N, Dk, Dv]
    u_all = torch.stack(pseudo_values, dim=2)  # [B, H, N, C, Dv]
    scores = (qc @ kc.transpose(-1, -2)) * decay  # [B, H, N, C, C], zero above the diagonal
    out = (qc * from_start) @ s_prev + scores @ u_all  # [B, H, N, C, Dv]
    return from_chunks(out, seq_len), state
