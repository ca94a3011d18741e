"""Fast-weight layers: every option meets the memory contract; bad options are clear errors;
the delta-rule memory really stores and recalls key -> value associations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from contract import assert_outputs_close, assert_states_close, run_chunked, run_steps

import memzoo
from memzoo.layers.base import state_nbytes_per_sequence
from memzoo.layers.linear_attention import taylor_features
from memzoo.ops import chunk_delta_rule, delta_rule_step, naive_delta_rule

D_MODEL = 16
FAST_WEIGHT_LAYERS = ("linear_attention", "deltanet", "gated_deltanet", "mlstm")


def build(name, seed=0, **kwargs):
    torch.manual_seed(seed)
    return memzoo.layers.build(name, d_model=D_MODEL, **kwargs).eval()


def check_contract(layer, seq_len=19, cuts=(5, 6, 14)):
    x = torch.randn(2, seq_len, D_MODEL, generator=torch.Generator().manual_seed(seq_len))
    with torch.no_grad():
        y_whole, s_whole = layer(x)
        y_chunk, s_chunk = run_chunked(layer, x, list(cuts))
        y_step, s_step = run_steps(layer, x)
    assert y_whole.shape == x.shape and torch.isfinite(y_whole).all()
    assert_outputs_close(y_chunk, y_whole)
    assert_outputs_close(y_step, y_whole)
    assert_states_close(s_chunk, s_whole)
    assert_states_close(s_step, s_whole)
    return s_whole


@pytest.mark.parametrize("feature_map", ["elu+1", "identity", "taylor"])
def test_each_feature_map_meets_the_contract(feature_map):
    layer = build("linear_attention", feature_map=feature_map, feature_dim=3, chunk_size=4)
    state = check_contract(layer)
    assert layer.state_size(19) == state_nbytes_per_sequence(state)


@pytest.mark.parametrize("name", ["deltanet", "gated_deltanet", "mlstm"])
@pytest.mark.parametrize("conv_size", [1, 2, 4])
def test_conv_sizes_meet_the_contract(name, conv_size):
    check_contract(build(name, chunk_size=4, conv_size=conv_size))


@pytest.mark.parametrize("name", FAST_WEIGHT_LAYERS)
def test_default_chunk_size_beyond_one_chunk(name):
    """Defaults (num_heads=4, chunk_size=64) on an input spanning several chunks."""
    check_contract(build(name), seq_len=70, cuts=(1, 66))


def test_taylor_map_is_the_second_order_series_of_exp():
    a, b = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64)
    s = (a * b).sum(-1) / 6**0.5
    got = (taylor_features(a) * taylor_features(b)).sum(-1)
    assert taylor_features(a).shape == (5, 1 + 6 + 36)
    assert torch.allclose(got, 1 + s + s**2 / 2)


def test_bad_feature_map_names_field_and_choices():
    with pytest.raises(memzoo.ConfigError, match=r"feature_map.*elu\+1, identity, taylor.*'relu'"):
        memzoo.layers.build("linear_attention", d_model=D_MODEL, feature_map="relu")


@pytest.mark.parametrize("name", FAST_WEIGHT_LAYERS)
@pytest.mark.parametrize("bad", [3, 0, 32, 2.0])
def test_bad_num_heads_names_field_and_choices(name, bad):
    with pytest.raises(memzoo.ConfigError, match=r"num_heads.*1, 2, 4, 8, 16"):
        memzoo.layers.build(name, d_model=D_MODEL, num_heads=bad)


@pytest.mark.parametrize("name", FAST_WEIGHT_LAYERS)
def test_bad_chunk_size_names_field(name):
    with pytest.raises(memzoo.ConfigError, match="chunk_size"):
        memzoo.layers.build(name, d_model=D_MODEL, chunk_size=0)


@pytest.mark.parametrize("name", ["deltanet", "gated_deltanet", "mlstm"])
def test_bad_conv_size_names_field(name):
    with pytest.raises(memzoo.ConfigError, match="conv_size"):
        memzoo.layers.build(name, d_model=D_MODEL, conv_size=0)


def test_gated_deltanet_decay_is_in_unit_interval():
    layer = build("gated_deltanet").double()
    x = torch.randn(3, 20, D_MODEL, dtype=torch.float64)
    g = -layer.A_log.exp() * F.softplus(layer.a_proj(x) + layer.dt_bias)  # log alpha
    alpha = g.exp()
    assert ((alpha > 0) & (alpha < 1)).all()


def deltanet_memory(seed=0):
    """The memory of a DeltaNet layer after a random sequence: a realistic, full state."""
    layer = build("deltanet", seed=seed)
    with torch.no_grad():
        _, state = layer(torch.randn(2, 30, D_MODEL, generator=torch.Generator().manual_seed(seed)))
    assert state.S.abs().max() > 1e-3  # the memory really holds something
    return state.S  # [B, H, Dh, Dh]


def test_deltanet_memory_recalls_a_written_value():
    """Writing k -> v with beta = 1 overwrites whatever the memory held for k: reading q = k
    returns v, in the chunked, naive and step forms, whatever was stored before."""
    memory = deltanet_memory()
    batch, heads, d_k, d_v = memory.shape
    k = F.normalize(torch.randn(batch, heads, 1, d_k), dim=-1)
    v = torch.randn(batch, heads, 1, d_v)
    beta = torch.ones(batch, heads, 1)
    for out, _ in (
        chunk_delta_rule(k, k, v, beta, memory, chunk_size=4),
        naive_delta_rule(k, k, v, beta, memory),
    ):
        assert torch.allclose(out, v, atol=1e-5)
    out, _ = delta_rule_step(k[:, :, 0], k[:, :, 0], v[:, :, 0], beta[:, :, 0], memory)
    assert torch.allclose(out, v[:, :, 0], atol=1e-5)
    # Without the delta rule's correction (plain addition) the old content leaks into the read.
    leaky = torch.einsum("bhk,bhkv->bhv", k[:, :, 0], memory) + v[:, :, 0]
    assert not torch.allclose(leaky, v[:, :, 0], atol=1e-3)


def test_deltanet_memory_keeps_a_value_under_an_orthogonal_write():
    """Write k1 -> v1, then k2 -> v2 with k2 orthogonal to k1, then read k1 (beta = 0): v1."""
    memory = deltanet_memory(seed=1)
    batch, heads, d_k, d_v = memory.shape
    basis, _ = torch.linalg.qr(torch.randn(batch, heads, d_k, d_k))
    k1, k2 = basis[..., 0], basis[..., 1]  # orthonormal keys [B, H, Dk]
    v1, v2 = torch.randn(batch, heads, d_v), torch.randn(batch, heads, d_v)
    keys = torch.stack([k1, k2, k1], dim=2)
    values = torch.stack([v1, v2, torch.zeros_like(v1)], dim=2)
    beta = torch.tensor([1.0, 1.0, 0.0]).expand(batch, heads, 3)
    out, final = chunk_delta_rule(keys, keys, values, beta, memory, chunk_size=2)
    assert torch.allclose(out[:, :, 2], v1, atol=1e-5)
    assert torch.allclose(out[:, :, 1], v2, atol=1e-5)
    recalled = torch.einsum("bhk,bhkv->bhv", k2, final)
    assert torch.allclose(recalled, v2, atol=1e-5)


@pytest.mark.parametrize("name", ["linear_attention", "deltanet", "gated_deltanet", "mlstm"])
def test_naive_algorithm_matches_chunked_layer(name):
    """``algorithm="naive"`` (the benchmark's reference) computes the same function."""
    torch.manual_seed(0)
    chunked = memzoo.layers.build(name, d_model=16, chunk_size=4).eval()
    naive = memzoo.layers.build(name, d_model=16, chunk_size=4, algorithm="naive").eval()
    naive.load_state_dict(chunked.state_dict())
    x = torch.randn(2, 11, 16)
    with torch.no_grad():
        (y1, s1), (y2, s2) = chunked(x), naive(x)
    torch.testing.assert_close(y2, y1, rtol=1e-4, atol=1e-5)
    for a, b in zip(memzoo.layers.state_tensors(s2), memzoo.layers.state_tensors(s1)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(memzoo.ConfigError, match="algorithm must be one of chunked, naive"):
        memzoo.layers.build(name, d_model=16, algorithm="fast")


def test_linear_attention_has_a_short_convolution_by_default_and_conv_size_0_removes_it():
    """As in Based/Zoology: the default layer mixes each token's q/k/v with the 3 before it."""
    torch.manual_seed(0)
    with_conv = memzoo.layers.build("linear_attention", d_model=16)
    without = memzoo.layers.build("linear_attention", d_model=16, conv_size=0)
    assert with_conv.conv is not None and with_conv.conv.kernel_size == 4 and without.conv is None
    assert with_conv.state_size(1) > without.state_size(1)  # the conv cache is carried state
    x = torch.randn(1, 6, 16)
    y, _ = with_conv(x)
    x2 = x.clone()
    x2[:, 2] += 1.0  # a change at position 2 ...
    y2, _ = with_conv(x2)
    # ... reaches position 2 and later ones only (causal), through the conv and the memory.
    assert torch.allclose(y[:, :2], y2[:, :2]) and not torch.allclose(y[:, 2:], y2[:, 2:])


def test_gated_deltanet_without_its_output_gate_reads_out_as_deltanet_does():
    torch.manual_seed(0)
    gated = memzoo.layers.build("gated_deltanet", d_model=16, output_gate=False).eval()
    assert not hasattr(gated, "g_proj")
    x = torch.randn(2, 12, 16)
    y, state = gated(x)
    # the same memory read, then RMSNorm and the output projection only
    o = torch.randn(2, 4, 12, 4)
    expected = gated.o_proj(gated.norm(o).transpose(1, 2).reshape(2, 12, 16))
    assert torch.allclose(gated._output(o, x), expected, atol=1e-6)
    y_pieces = torch.cat((gated(x[:, :5])[0], gated(x[:, 5:], gated(x[:, :5])[1])[0]), dim=1)
    assert torch.allclose(y, y_pieces, atol=1e-5)
    with_gate = memzoo.layers.build("gated_deltanet", d_model=16).eval()
    assert not torch.allclose(
        with_gate._output(o, x), with_gate.o_proj(with_gate.norm(o).transpose(1, 2).reshape(2, 12, 16))
    )
