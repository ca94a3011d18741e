"""The delta rule (DeltaNet: Schlag et al. 2021; chunked form: Yang et al. 2024), three forms.

Recurrence, written for a state ``S: [Dk, Dv]`` (the transpose of the papers' ``[Dv, Dk]``)::

    u_t = beta_t (v_t - S_{t-1}^T k_t)     # what the memory gets wrong about k_t, scaled
    S_t = S_{t-1} + k_t u_t^T              # = (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T
    o_t = S_t^T q_t

Keys are expected L2-normalised (the layer does it) and ``beta_t`` in (0, 1]; with a unit
key and beta = 1 a write replaces what the memory held for that key by v_t exactly.

Chunked form (the WY / UT-transform formulation). Inside a chunk starting from state S,
the pseudo-values u_i satisfy ``(I + strict_tril(diag(beta) K K^T)) U = diag(beta) (V - K S)``,
so with ``A`` the inverse of that unit lower-triangular matrix::

    W = A diag(beta) K,  U~ = A diag(beta) V       (every chunk at once, one triangular solve)
    U = U~ - W S                                    (per chunk, the only sequential part)
    O = Q S + (Q K^T * causal_incl) U,  S_next = S + K^T U

Shape legend: B batch, H heads, T time, Dk key dim, Dv value dim, N chunks, C chunk size.
"""

from __future__ import annotations

import torch
from einops import rearrange

from memzoo.ops._chunking import check_chunk_size, check_per_token, check_qkv, pad_time, zero_state
from memzoo.ops._delta_rule_chunked import ChunkDeltaRuleFunction


def naive_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference recurrence, one token at a time.

    Args:
        q, k: ``[B, H, T, Dk]`` (k L2-normalised by the caller).
        v: ``[B, H, T, Dv]``.
        beta: ``[B, H, T]`` write strength.
        initial_state: ``[B, H, Dk, Dv]`` or None (zeros).

    Returns:
        ``(o [B, H, T, Dv], S_T [B, H, Dk, Dv])``.
    """
    _, _, _, d_k, d_v = check_qkv(q, k, v)
    check_per_token("beta", beta, q)
    state = zero_state(q, d_k, d_v) if initial_state is None else initial_state
    outs = []
    # unbind, not indexing: indexing's backward fills a full-size zero gradient per token.
    for q_t, k_t, v_t, b_t in zip(q.unbind(2), k.unbind(2), v.unbind(2), beta.unbind(2)):
        o_t, state = delta_rule_step(q_t, k_t, v_t, b_t, state)
        outs.append(o_t)
    return torch.stack(outs, dim=2), state


def delta_rule_step(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, beta: torch.Tensor, state: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoding step: ``q, k: [B, H, Dk]``, ``v: [B, H, Dv]``, ``beta: [B, H]``,
    ``state: [B, H, Dk, Dv]``. Returns ``(o [B, H, Dv], new_state [B, H, Dk, Dv])``."""
    recalled = (k.unsqueeze(-2) @ state).squeeze(-2)  # [B, H, Dv]
    update = beta.unsqueeze(-1) * (v - recalled)  # [B, H, Dv]
    state = state + k.unsqueeze(-1) * update.unsqueeze(-2)
    return (q.unsqueeze(-2) @ state).squeeze(-2), state


def chunk_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    beta: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked parallel form; same arguments and results as ``naive_delta_rule``.

    All intra-chunk work (the triangular solve, Q K^T, the output matmuls) is batched over
    every chunk; only ``U = U~ - W S``, ``S += K^T U`` runs in a loop over the T/C chunks.
    The backward is written out (``_delta_rule_chunked.py``); double backward is not
    supported. Padding tokens (T not a multiple of C) have beta = 0 and write nothing.
    """
    check_chunk_size(chunk_size)
    batch, heads, seq_len, d_k, d_v = check_qkv(q, k, v)
    check_per_token("beta", beta, q)
    state = zero_state(q, d_k, d_v) if initial_state is None else initial_state
    # Chunk-major, heads folded into the batch: [N, B*H, C, D], contiguous for the loops.
    qc, kc, vc = (
        rearrange(pad_time(x, chunk_size), "b h (n c) d -> n (b h) c d", c=chunk_size).contiguous()
        for x in (q, k, v)
    )
    bc = rearrange(pad_time(beta, chunk_size), "b h (n c) -> n (b h) c", c=chunk_size).contiguous()
    s0 = rearrange(state, "b h k v -> (b h) k v").contiguous()
    out, final = ChunkDeltaRuleFunction.apply(qc, kc, vc, bc, s0)  # [N, B*H, C, Dv], [B*H, Dk, Dv]
    out = rearrange(out, "n (b h) c v -> b h (n c) v", b=batch)[:, :, :seq_len]
    return out, rearrange(final, "(b h) k v -> b h k v", b=batch)
