"""Every registered layer: whole == chunked == token by token, gradients, state size, errors."""

from __future__ import annotations

import pytest
import torch
from contract import assert_outputs_close, assert_states_close, run_chunked, run_steps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from layer_cases import STATE_TOL, kwargs_for, state_tol_for

import memzoo
from memzoo.layers.base import state_nbytes_per_sequence, state_tensors

D_MODEL = 16
ALL_LAYERS = memzoo.layers.names()


def make_layer(name, seed=0):
    torch.manual_seed(seed)
    layer = memzoo.layers.build(name, d_model=D_MODEL, **kwargs_for(name))
    return layer.eval()


@pytest.mark.parametrize("name", ALL_LAYERS)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_whole_equals_chunked_equals_steps(name, data):
    batch = data.draw(st.integers(1, 3), label="batch")
    seq_len = data.draw(st.integers(1, 40), label="seq_len")
    cuts = data.draw(st.lists(st.integers(1, max(seq_len - 1, 1)), max_size=4, unique=True), label="cuts")
    cuts = sorted(c for c in cuts if 0 < c < seq_len)
    layer = make_layer(name)
    x = torch.randn(batch, seq_len, D_MODEL, generator=torch.Generator().manual_seed(seq_len))
    with torch.no_grad():
        y_whole, s_whole = layer(x)
        y_chunk, s_chunk = run_chunked(layer, x, cuts)
        y_step, s_step = run_steps(layer, x)
    assert y_whole.shape == x.shape
    assert_outputs_close(y_chunk, y_whole)
    assert_outputs_close(y_step, y_whole)
    assert_states_close(s_chunk, s_whole, tol=state_tol_for(name))
    assert_states_close(s_step, s_whole, tol=state_tol_for(name))


@pytest.mark.parametrize("name", ALL_LAYERS)
def test_init_state_matches_no_state(name):
    layer = make_layer(name)
    x = torch.randn(2, 9, D_MODEL)
    with torch.no_grad():
        y1, s1 = layer(x)
        y2, s2 = layer(x, layer.init_state(2))
    assert_outputs_close(y2, y1, tol=1e-6)
    assert_states_close(s2, s1, tol=1e-6)


@pytest.mark.parametrize("name", ALL_LAYERS)
def test_forward_does_not_mutate_module(name):
    layer = make_layer(name)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    with torch.no_grad():
        _, s = layer(torch.randn(2, 7, D_MODEL))
        layer(torch.randn(2, 5, D_MODEL), s)
    after = layer.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), f"forward changed {key}"


@pytest.mark.parametrize("name", ALL_LAYERS)
def test_gradients_reach_parameters_and_flow_through_state(name):
    layer = make_layer(name)
    layer.train()
    x1 = torch.randn(2, 8, D_MODEL, requires_grad=True)
    x2 = torch.randn(2, 8, D_MODEL)
    _, state = layer(x1)
    y2, _ = layer(x2, state)
    y2.pow(2).mean().backward()
    grads = [p.grad for p in layer.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), "no parameter got a gradient"
    if getattr(layer, "state_differentiable", True):
        assert x1.grad is not None and x1.grad.abs().sum() > 0, (
            "no gradient flowed from chunk 2 back through the carried state to chunk 1"
        )


@pytest.mark.parametrize("name", ALL_LAYERS)
@pytest.mark.parametrize("seq_len", [1, 13, 40])
def test_state_size_matches_returned_state(name, seq_len):
    layer = make_layer(name)
    with torch.no_grad():
        _, state = layer(torch.randn(3, seq_len, D_MODEL))
    assert layer.state_size(seq_len) == state_nbytes_per_sequence(state)
    assert all(t.shape[0] == 3 for t in state_tensors(state)), "state must be batch first"


@pytest.mark.parametrize("name", ALL_LAYERS)
def test_info_is_complete(name):
    info = memzoo.layers.info(name)
    assert info.kind in ("short", "long")
    assert info.family and info.description
    assert info.state_growth in ("O(1)", "O(window)", "O(T)")
    assert make_layer(name).kind == info.kind


@pytest.mark.parametrize("name", ALL_LAYERS)
def test_wrong_input_width_is_a_clear_error(name):
    layer = make_layer(name)
    with pytest.raises(memzoo.ConfigError, match=str(D_MODEL)):
        layer(torch.randn(2, 4, D_MODEL + 1))


def test_unknown_layer_name_lists_registered_ones():
    with pytest.raises(memzoo.ConfigError, match="unknown layer 'lstmm'.*lstm"):
        memzoo.layers.build("lstmm", d_model=8)


def test_unknown_option_is_named():
    with pytest.raises(memzoo.ConfigError, match="wndow"):
        memzoo.layers.build("lstm", d_model=8, wndow=3)


def test_bad_d_model_is_rejected():
    with pytest.raises(memzoo.ConfigError, match="d_model"):
        memzoo.layers.build("gru", d_model=0)


@pytest.mark.parametrize("name", sorted(STATE_TOL))
def test_fp64_contract_is_exact(name):
    """A layer with a looser fp32 state tolerance must be exact in fp64: the looseness is
    rounding, not a different computation."""
    layer = make_layer(name).double()
    x = torch.randn(2, 24, D_MODEL, dtype=torch.float64, generator=torch.Generator().manual_seed(24))
    with torch.no_grad():
        y_whole, s_whole = layer(x)
        y_chunk, s_chunk = run_chunked(layer, x, [5, 13])
        y_step, s_step = run_steps(layer, x)
    for y, s in ((y_chunk, s_chunk), (y_step, s_step)):
        assert_outputs_close(y, y_whole, tol=1e-10)
        assert_states_close(s, s_whole, tol=1e-10)
