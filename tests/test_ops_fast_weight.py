"""Fast-weight ops: chunked form == naive recurrence == step form (outputs, final state, grads)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import memzoo
from memzoo.layers.base import state_tensors
from memzoo.ops import (
    MLSTMState,
    chunk_delta_rule,
    chunk_gated_delta_rule,
    chunk_linear_attention,
    chunk_mlstm,
    delta_rule_step,
    gated_delta_rule_step,
    linear_attention_step,
    mlstm_step,
    naive_delta_rule,
    naive_gated_delta_rule,
    naive_linear_attention,
    naive_mlstm,
)

OPS = ("linear_attention", "delta_rule", "gated_delta_rule", "mlstm")
CHUNK = {
    "linear_attention": chunk_linear_attention,
    "delta_rule": chunk_delta_rule,
    "gated_delta_rule": chunk_gated_delta_rule,
    "mlstm": chunk_mlstm,
}
NAIVE = {
    "linear_attention": naive_linear_attention,
    "delta_rule": naive_delta_rule,
    "gated_delta_rule": naive_gated_delta_rule,
    "mlstm": naive_mlstm,
}
STEP = {
    "linear_attention": linear_attention_step,
    "delta_rule": delta_rule_step,
    "gated_delta_rule": gated_delta_rule_step,
    "mlstm": mlstm_step,
}

# fp64 gradients of the chunked/step forms vs the naive recurrence: summing in another order
# leaves ~1e-8 relative error in rare shapes (d_k=1, chunk 1) that hypothesis finds; 1e-6 is
# still 100x stricter than the fp32 layer contract.
FP64_GRAD_RTOL = 1e-6


def make_leaves(
    op, batch, heads, seq_len, d_k, d_v, *, dtype=torch.float64, seed=0, state=True, gate_scale=1.0
):
    """Raw leaf tensors (requires_grad) for ``op``; ``op_inputs`` maps them to op arguments."""
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.0):
        return (scale * torch.randn(*shape, generator=gen, dtype=dtype)).requires_grad_()

    leaves = {"q": rand(batch, heads, seq_len, d_k), "k": rand(batch, heads, seq_len, d_k)}
    leaves["v"] = rand(batch, heads, seq_len, d_v)
    if op in ("delta_rule", "gated_delta_rule"):
        leaves["beta"] = rand(batch, heads, seq_len)
    if op == "gated_delta_rule":
        leaves["g"] = rand(batch, heads, seq_len, scale=gate_scale)
    if op == "mlstm":
        leaves["i"] = rand(batch, heads, seq_len, scale=gate_scale)
        leaves["f"] = rand(batch, heads, seq_len, scale=gate_scale)
    if state:
        leaves["S0"] = rand(batch, heads, d_k, d_v, scale=0.5)
        if op == "mlstm":
            leaves["n0"] = rand(batch, heads, d_k, scale=0.5)
            leaves["m0"] = rand(batch, heads)
    return leaves


def op_inputs(op, leaves):
    """``(args, initial_state)``: unit keys for the delta rules, gates in their ranges."""
    q, k, v = leaves["q"], leaves["k"], leaves["v"]
    if op in ("delta_rule", "gated_delta_rule"):
        k = F.normalize(k, dim=-1)
    args = [q, k, v]
    if "beta" in leaves:
        args.append(torch.sigmoid(leaves["beta"]))
    if op == "gated_delta_rule":
        args.append(F.logsigmoid(leaves["g"]))  # log decay in (-inf, 0)
    if op == "mlstm":
        args += [leaves["i"], F.logsigmoid(leaves["f"])]
    state = leaves.get("S0")
    if op == "mlstm" and state is not None:
        state = MLSTMState(leaves["S0"], leaves["n0"], leaves["m0"])
    return args, state


def run_chunk(op, leaves, chunk_size):
    args, state = op_inputs(op, leaves)
    out, final = CHUNK[op](*args, initial_state=state, chunk_size=chunk_size)
    return [out, *state_tensors(final)]


def run_naive(op, leaves):
    args, state = op_inputs(op, leaves)
    out, final = NAIVE[op](*args, initial_state=state)
    return [out, *state_tensors(final)]


def run_steps(op, leaves):
    args, state = op_inputs(op, leaves)
    outs = []
    for t in range(args[0].shape[2]):
        out, state = STEP[op](*(a[:, :, t] for a in args), state)
        outs.append(out)
    return [torch.stack(outs, dim=2), *state_tensors(state)]


def grads(results, leaves, seed=1):
    """Gradients of a fixed random projection of every result wrt every leaf."""
    gen = torch.Generator().manual_seed(seed)
    loss = sum((r * torch.randn(r.shape, generator=gen, dtype=r.dtype)).sum() for r in results)
    return torch.autograd.grad(loss, list(leaves.values()))


def assert_close_lists(got, want, rtol, name):
    assert len(got) == len(want), f"{name}: {len(got)} tensors != {len(want)}"
    for idx, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape, f"{name}[{idx}]: shape {tuple(a.shape)} != {tuple(b.shape)}"
        assert torch.isfinite(a).all(), f"{name}[{idx}]: non-finite values"
        err = ((a - b).abs().max() / b.abs().max().clamp_min(1e-6)).item()
        assert err <= rtol, f"{name}[{idx}]: max relative error {err:.2e} > {rtol:.0e}"


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("chunk_size", [1, 4, 8, 32])
def test_chunked_matches_naive_with_gradients(op, chunk_size):
    leaves = make_leaves(op, 2, 2, 19, 5, 3, seed=chunk_size)  # 19: not a multiple of C
    got, want = run_chunk(op, leaves, chunk_size), run_naive(op, leaves)
    assert_close_lists(got, want, 1e-10, "outputs/state")
    assert_close_lists(grads(got, leaves), grads(want, leaves), FP64_GRAD_RTOL, "gradients")


@pytest.mark.parametrize("op", OPS)
def test_step_form_matches_naive(op):
    leaves = make_leaves(op, 2, 3, 11, 4, 6, seed=3)
    got, want = run_steps(op, leaves), run_naive(op, leaves)
    assert_close_lists(got, want, 1e-12, "step vs naive")
    assert_close_lists(grads(got, leaves), grads(want, leaves), FP64_GRAD_RTOL, "step gradients")


@pytest.mark.parametrize("op", OPS)
def test_fp32_chunked_matches_fp64_naive(op):
    leaves64 = make_leaves(op, 2, 2, 70, 8, 8, seed=5)
    leaves32 = {k: v.detach().float().requires_grad_() for k, v in leaves64.items()}
    got = [t.double() for t in run_chunk(op, leaves32, 16)]
    assert_close_lists(got, run_naive(op, leaves64), 1e-4, "fp32 chunked vs fp64 naive")


@pytest.mark.parametrize("op", OPS)
def test_no_initial_state_means_zeros(op):
    leaves = make_leaves(op, 1, 2, 9, 3, 3, state=False)
    zeros = make_leaves(op, 1, 2, 9, 3, 3, state=True)
    for name in ("S0", "n0", "m0"):
        if name in zeros:
            leaves[name] = torch.zeros_like(zeros[name])
    without = {k: v for k, v in leaves.items() if k not in ("S0", "n0", "m0")}
    assert_close_lists(run_chunk(op, without, 4), run_chunk(op, leaves, 4), 0.0, "no state")


@pytest.mark.parametrize("op", ["gated_delta_rule", "mlstm"])
def test_extreme_gates_stay_finite_and_match(op):
    """Strong decays (alpha down to ~e^-40) and large input gates exercise the log-space paths."""
    leaves = make_leaves(op, 1, 2, 40, 4, 4, seed=7, gate_scale=20.0)
    got, want = run_chunk(op, leaves, 16), run_naive(op, leaves)
    assert_close_lists(got, want, 1e-9, "extreme gates")
    assert_close_lists(grads(got, leaves), grads(want, leaves), 1e-7, "extreme-gate gradients")


def test_gated_delta_rule_without_decay_is_the_delta_rule():
    leaves = make_leaves("delta_rule", 2, 2, 13, 4, 5, seed=11)
    args, state = op_inputs("delta_rule", leaves)
    no_decay = torch.zeros_like(args[3])
    gated, gated_state = chunk_gated_delta_rule(*args, no_decay, initial_state=state, chunk_size=4)
    plain, plain_state = chunk_delta_rule(*args, initial_state=state, chunk_size=4)
    assert_close_lists([gated, gated_state], [plain, plain_state], 1e-12, "g = 0")


def test_mlstm_stabiliser_follows_the_recurrence():
    """The chunked final m is max(log_f + m_prev, i) unrolled, not just any valid rescaling."""
    leaves = make_leaves("mlstm", 1, 1, 12, 2, 2, seed=2, state=False)
    args, _ = op_inputs("mlstm", leaves)
    _, final = chunk_mlstm(*args, chunk_size=5)
    m = torch.zeros(1, 1, dtype=torch.float64)
    for t in range(12):
        m = torch.maximum(args[4][:, :, t] + m, args[3][:, :, t])
    assert torch.allclose(final.m, m, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bad", [0, -2, 2.5])
def test_bad_chunk_size_is_a_config_error(bad):
    leaves = make_leaves("delta_rule", 1, 1, 4, 2, 2)
    args, _ = op_inputs("delta_rule", leaves)
    with pytest.raises(memzoo.ConfigError, match="chunk_size"):
        chunk_delta_rule(*args, chunk_size=bad)


def test_mismatched_shapes_are_rejected():
    q = torch.randn(1, 2, 5, 3)
    with pytest.raises(ValueError, match=r"\[B, H, T"):
        chunk_linear_attention(q, torch.randn(1, 2, 4, 3), torch.randn(1, 2, 5, 3))
    with pytest.raises(ValueError, match="beta"):
        chunk_delta_rule(q, q, q, torch.rand(1, 2, 4))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    op=st.sampled_from(OPS),
    batch=st.integers(1, 2),
    heads=st.integers(1, 2),
    seq_len=st.integers(1, 24),
    d_k=st.integers(1, 6),
    d_v=st.integers(1, 6),
    chunk_size=st.integers(1, 10),
    state=st.booleans(),
)
def test_chunked_matches_naive_for_any_shape(op, batch, heads, seq_len, d_k, d_v, chunk_size, state):
    leaves = make_leaves(op, batch, heads, seq_len, d_k, d_v, seed=seq_len, state=state)
    got, want = run_chunk(op, leaves, chunk_size), run_naive(op, leaves)
    assert got[0].shape == (batch, heads, seq_len, d_v)
    assert_close_lists(got, want, 1e-9, "outputs/state")
    assert_close_lists(grads(got, leaves), grads(want, leaves), FP64_GRAD_RTOL, "gradients")
