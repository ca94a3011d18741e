"""Linear attention as a fast-weight memory (Katharopoulos et al. 2020), three forms.

Recurrence (keys and queries already feature-mapped by the caller, e.g. phi = elu + 1)::

    S_t = S_{t-1} + k_t v_t^T          # S: [Dk, Dv], an outer-product memory
    o_t = S_t^T q_t                    # read with the query, o_t: [Dv]

No normaliser: the ``z_t = z_{t-1} + k_t`` denominator of the original is left out on
purpose. It is near zero whenever the feature map is not positive (identity) and it makes
outputs drift in scale with T; the layers put a per-head RMSNorm on the output instead
(as Based and the flash-linear-attention layers do), which keeps the state a single matrix.

Shape legend: B batch, H heads, T time, Dk key/query feature dim, Dv value dim,
N chunks, C chunk size. The state is ``[B, H, Dk, Dv]``.

Forms, all returning ``(out [B, H, T, Dv], final_state [B, H, Dk, Dv])`` except the step:

- ``naive_linear_attention``: token-by-token loop, the reference.
- ``chunk_linear_attention``: quadratic inside chunks of C tokens, the chunk states are a
  cumulative sum of per-chunk ``K^T V`` (no Python loop at all).
- ``linear_attention_step``: one token ``[B, H, D]`` for decoding.
"""

from __future__ import annotations

import torch

from memzoo.ops._chunking import (
    causal_mask,
    check_chunk_size,
    check_qkv,
    from_chunks,
    to_chunks,
    zero_state,
)


def naive_linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, initial_state: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference recurrence, one token at a time.

    Args:
        q, k: ``[B, H, T, Dk]`` feature-mapped queries and keys.
        v: ``[B, H, T, Dv]`` values.
        initial_state: ``[B, H, Dk, Dv]`` or None (zeros).

    Returns:
        ``(o [B, H, T, Dv], S_T [B, H, Dk, Dv])``.
    """
    _, _, _, d_k, d_v = check_qkv(q, k, v)
    state = zero_state(q, d_k, d_v) if initial_state is None else initial_state
    outs = []
    # unbind, not indexing: indexing's backward fills a full-size zero gradient per token.
    for q_t, k_t, v_t in zip(q.unbind(2), k.unbind(2), v.unbind(2)):
        state = state + k_t[..., :, None] * v_t[..., None, :]  # [B, H, Dk, Dv]
        outs.append(torch.einsum("bhk,bhkv->bhv", q_t, state))
    return torch.stack(outs, dim=2), state


def linear_attention_step(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One decoding step: ``q, k: [B, H, Dk]``, ``v: [B, H, Dv]``, ``state: [B, H, Dk, Dv]``.

    Returns ``(o [B, H, Dv], new_state [B, H, Dk, Dv])``.
    """
    state = state + k.unsqueeze(-1) * v.unsqueeze(-2)
    out = (q.unsqueeze(-2) @ state).squeeze(-2)  # [B, H, Dv]
    return out, state


def chunk_linear_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked parallel form; same arguments and results as ``naive_linear_attention``.

    Inside a chunk: ``O = Q S_prev + (Q K^T * causal) V``; across chunks the state before
    chunk n is ``S_0 + sum_{m<n} K_m^T V_m``, a cumulative sum over chunks.
    """
    check_chunk_size(chunk_size)
    _, _, seq_len, d_k, d_v = check_qkv(q, k, v)
    state0 = zero_state(q, d_k, d_v) if initial_state is None else initial_state
    qc, kc, vc = (to_chunks(x, chunk_size) for x in (q, k, v))  # [B, H, N, C, D]
    chunk_kv = kc.transpose(-1, -2) @ vc  # [B, H, N, Dk, Dv]
    ends = state0.unsqueeze(2) + chunk_kv.cumsum(dim=2)  # state after each chunk
    starts = torch.cat([state0.unsqueeze(2), ends[:, :, :-1]], dim=2)  # state before each
    mask = causal_mask(chunk_size, q.device)
    scores = (qc @ kc.transpose(-1, -2)).masked_fill(~mask, 0.0)  # [B, H, N, C, C]
    out = qc @ starts + scores @ vc  # [B, H, N, C, Dv]
    return from_chunks(out, seq_len), ends[:, :, -1]
