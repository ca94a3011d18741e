"""Pure tensor ops behind the memory layers, each with a naive reference it is tested against.

Fast-weight memories (O(1) state), in three forms each: ``chunk_*`` (parallel, for training
and prefill), ``*_step`` (one token, for decoding) and ``naive_*`` (token-by-token reference).
Shapes: ``q, k: [B, H, T, Dk]``, ``v: [B, H, T, Dv]``, per-token gates ``[B, H, T]``,
matrix state ``[B, H, Dk, Dv]``; every op returns ``(out [B, H, T, Dv], final_state)``.

>>> import torch
>>> from memzoo.ops import chunk_delta_rule, naive_delta_rule
>>> q, k, v = (torch.randn(1, 2, 5, 3, dtype=torch.float64) for _ in range(3))
>>> beta = torch.rand(1, 2, 5, dtype=torch.float64)
>>> o1, s1 = chunk_delta_rule(q, k, v, beta, chunk_size=2)
>>> o2, s2 = naive_delta_rule(q, k, v, beta)
>>> bool(torch.allclose(o1, o2) and torch.allclose(s1, s2))
True
"""

from memzoo.ops.delta_rule import chunk_delta_rule, delta_rule_step, naive_delta_rule
from memzoo.ops.gated_delta_rule import (
    chunk_gated_delta_rule,
    gated_delta_rule_step,
    naive_gated_delta_rule,
)
from memzoo.ops.linear_attention import (
    chunk_linear_attention,
    linear_attention_step,
    naive_linear_attention,
)
from memzoo.ops.mlstm import MLSTMState, chunk_mlstm, mlstm_step, naive_mlstm, zero_mlstm_state

__all__ = [
    "MLSTMState",
    "chunk_delta_rule",
    "chunk_gated_delta_rule",
    "chunk_linear_attention",
    "chunk_mlstm",
    "delta_rule_step",
    "gated_delta_rule_step",
    "linear_attention_step",
    "mlstm_step",
    "naive_delta_rule",
    "naive_gated_delta_rule",
    "naive_linear_attention",
    "naive_mlstm",
    "zero_mlstm_state",
]
