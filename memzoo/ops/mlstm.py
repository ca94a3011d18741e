"""The mLSTM matrix memory (xLSTM, Beck et al. 2024), three forms, with the stabiliser state.

Gates per head and token: an exponential input gate ``exp(i_t)`` (the ops take its
pre-activation ``i_t``) and a sigmoid forget gate given as its log ``log_f_t = logsigmoid(.)``.
The stabiliser ``m_t`` keeps every exponential <= 1; the stored state is the true state
scaled by ``exp(-m_t)``. With state ``C: [Dk, Dv]`` (transpose of the paper's ``[Dv, Dk]``)::

    m_t = max(log_f_t + m_{t-1}, i_t)
    f'_t = exp(log_f_t + m_{t-1} - m_t),   i'_t = exp(i_t - m_t)
    C_t = f'_t C_{t-1} + i'_t k_t v_t^T,    n_t = f'_t n_{t-1} + i'_t k_t
    h_t = C_t^T q_t / max(|n_t . q_t|, exp(-m_t))

Chunked form: unrolling the max gives, with ``F_t`` the log-forget sum since the chunk start
and ``m0`` the stabiliser entering the chunk, ``m_t = F_t + max(m0, cummax_{j<=t}(i_j - F_j))``,
so every ``m_t`` inside a chunk is known once ``m0`` is. Then, exactly as the recurrence::

    C_t = exp(m0 + F_t - m_t) C0 + sum_{j<=t} exp(i_j - F_j + F_t - m_t) k_j v_j^T

(all exponents <= 0). The chunk-start stabilisers, then the chunk-start states (an
elementwise decay-and-add), are the only loops over the T/C chunks; the rest is batched.

Shape legend: B batch, H heads, T time, Dk key dim, Dv value dim, N chunks, C chunk size.
State ``MLSTMState(C [B, H, Dk, Dv], n [B, H, Dk], m [B, H])``; a fresh state is all zeros.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from memzoo.ops._chunking import (
    causal_mask,
    check_chunk_size,
    check_per_token,
    check_qkv,
    from_chunks,
    to_chunks,
)


class MLSTMState(NamedTuple):
    C: torch.Tensor  # [B, H, Dk, Dv] stabilised matrix memory
    n: torch.Tensor  # [B, H, Dk] stabilised normaliser
    m: torch.Tensor  # [B, H] log-scale stabiliser


def zero_mlstm_state(q: torch.Tensor, d_k: int, d_v: int) -> MLSTMState:
    """A fresh mLSTM state on ``q``'s device and dtype (``q: [B, H, ...]``)."""
    batch, heads = q.shape[:2]
    return MLSTMState(
        q.new_zeros(batch, heads, d_k, d_v), q.new_zeros(batch, heads, d_k), q.new_zeros(batch, heads)
    )


def _check(q, k, v, i, log_f):
    dims = check_qkv(q, k, v)
    check_per_token("i", i, q)
    check_per_token("log_f", log_f, q)
    return dims


def mlstm_step(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    log_f: torch.Tensor,
    state: MLSTMState,
) -> tuple[torch.Tensor, MLSTMState]:
    """One step: ``q, k: [B, H, Dk]``, ``v: [B, H, Dv]``, ``i, log_f: [B, H]``.

    Returns ``(h [B, H, Dv], new MLSTMState)``.
    """
    mem, norm, m_prev = state
    m = torch.maximum(log_f + m_prev, i)  # [B, H]
    forget = torch.exp(log_f + m_prev - m)
    write = torch.exp(i - m)
    mem = forget[..., None, None] * mem + write[..., None, None] * (k.unsqueeze(-1) * v.unsqueeze(-2))
    norm = forget[..., None] * norm + write[..., None] * k
    num = (q.unsqueeze(-2) @ mem).squeeze(-2)  # [B, H, Dv]
    den = torch.maximum((q * norm).sum(-1).abs(), torch.exp(-m))  # [B, H]
    return num / den.unsqueeze(-1), MLSTMState(mem, norm, m)


def naive_mlstm(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    log_f: torch.Tensor,
    initial_state: MLSTMState | None = None,
) -> tuple[torch.Tensor, MLSTMState]:
    """Reference recurrence, one token at a time.

    Args:
        q, k: ``[B, H, T, Dk]`` (the layer scales k by 1/sqrt(Dk)).
        v: ``[B, H, T, Dv]``.
        i: ``[B, H, T]`` input-gate pre-activation (the gate is ``exp(i)``).
        log_f: ``[B, H, T]`` log forget gate, <= 0.
        initial_state: ``MLSTMState`` or None (zeros).

    Returns:
        ``(h [B, H, T, Dv], final MLSTMState)``.
    """
    _, _, _, d_k, d_v = _check(q, k, v, i, log_f)
    mem, norm, m = zero_mlstm_state(q, d_k, d_v) if initial_state is None else initial_state
    outs = []
    # unbind, not indexing: indexing's backward fills a full-size zero gradient per token.
    for q_t, k_t, v_t, i_t, f_t in zip(q.unbind(2), k.unbind(2), v.unbind(2), i.unbind(2), log_f.unbind(2)):
        m_new = torch.maximum(f_t + m, i_t)
        forget = torch.exp(f_t + m - m_new)
        write = torch.exp(i_t - m_new)
        outer = torch.einsum("bhk,bhv->bhkv", k_t, v_t)
        mem = forget[..., None, None] * mem + write[..., None, None] * outer
        norm = forget[..., None] * norm + write[..., None] * k_t
        m = m_new
        num = torch.einsum("bhk,bhkv->bhv", q_t, mem)
        den = torch.maximum(torch.einsum("bhk,bhk->bh", q_t, norm).abs(), torch.exp(-m))
        outs.append(num / den[..., None])
    return torch.stack(outs, dim=2), MLSTMState(mem, norm, m)


def chunk_mlstm(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    i: torch.Tensor,
    log_f: torch.Tensor,
    initial_state: MLSTMState | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, MLSTMState]:
    """Chunked parallel form; same arguments and results as ``naive_mlstm``.

    Padding tokens have ``i = -inf`` (nothing written, stabiliser untouched) and
    ``log_f = 0`` (no forgetting), so they leave the state as it was.
    """
    check_chunk_size(chunk_size)
    _, _, seq_len, d_k, d_v = _check(q, k, v, i, log_f)
    mem, norm, m = zero_mlstm_state(q, d_k, d_v) if initial_state is None else initial_state
    qc, kc, vc = (to_chunks(x, chunk_size) for x in (q, k, v))  # [B, H, N, C, D]
    ic = to_chunks(i, chunk_size, value=-torch.inf)  # [B, H, N, C]
    cum_f = to_chunks(log_f, chunk_size).cumsum(dim=-1)  # F_t, chunk-local
    gain = ic - cum_f  # i_j - F_j
    best = gain.cummax(dim=-1).values  # max_{j<=t} (i_j - F_j)

    # Stabiliser entering each chunk: a scalar recurrence per (B, H).
    # (unbind, not indexing, per chunk: indexing would make the backward O(N^2).)
    m_starts = []
    for f_total, best_total in zip(cum_f[..., -1].unbind(2), best[..., -1].unbind(2)):
        m_starts.append(m)
        m = f_total + torch.maximum(m, best_total)
    m_start = torch.stack(m_starts, dim=2)  # [B, H, N]
    m_tok = cum_f + torch.maximum(m_start.unsqueeze(-1), best)  # [B, H, N, C]: m_t of each token

    # Weights of the chunk-start state and of each earlier token j in token t's state.
    from_start = torch.exp(m_start.unsqueeze(-1) + cum_f - m_tok)  # [B, H, N, C]
    incl = causal_mask(chunk_size, q.device)
    log_w = (cum_f - m_tok).unsqueeze(-1) + gain.unsqueeze(-2)  # [B, H, N, C(t), C(j)]
    weights = torch.exp(torch.where(incl, log_w, torch.full_like(log_w, -torch.inf)))

    # Chunk-start memories: C_n = decay_n C_{n-1} + (weighted K)^T V, elementwise recurrence.
    end_w = weights[..., -1, :].unsqueeze(-1)  # [B, H, N, C, 1]: weight of token j at chunk end
    chunk_mem = (kc * end_w).transpose(-1, -2) @ vc  # [B, H, N, Dk, Dv]
    chunk_norm = (kc * end_w).sum(dim=-2)  # [B, H, N, Dk]
    decay = from_start[..., -1]  # [B, H, N]
    mem_starts, norm_starts = [], []
    for decay_c, mem_c, norm_c in zip(decay.unbind(2), chunk_mem.unbind(2), chunk_norm.unbind(2)):
        mem_starts.append(mem)
        norm_starts.append(norm)
        mem = decay_c[..., None, None] * mem + mem_c
        norm = decay_c[..., None] * norm + norm_c
    mem_prev = torch.stack(mem_starts, dim=2)  # [B, H, N, Dk, Dv]
    norm_prev = torch.stack(norm_starts, dim=2)  # [B, H, N, Dk]

    scores = (qc @ kc.transpose(-1, -2)) * weights  # [B, H, N, C, C]
    num = from_start.unsqueeze(-1) * (qc @ mem_prev) + scores @ vc  # [B, H, N, C, Dv]
    den = from_start * (qc * norm_prev.unsqueeze(-2)).sum(-1) + scores.sum(-1)  # [B, H, N, C]
    den = torch.maximum(den.abs(), torch.exp(-m_tok))
    out = num / den.unsqueeze(-1)
    return from_chunks(out, seq_len), MLSTMState(mem, norm, m)
