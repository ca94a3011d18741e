"""Attention-family layers: attention, sliding_window, attention_lstm.

The registry-wide contract (tests/test_layer_contract.py) runs each layer with one set of
options; here: the other scores and rope=False in every mode, agreement with an explicit
reference written independently of the layer code, the window band, the working
attention of attention_lstm, and clear errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from contract import assert_outputs_close, assert_states_close, run_chunked, run_steps

import memzoo
import memzoo.layers.sliding_window as sliding_module
import memzoo.ops.attention_scores as score_ops

D = 16


def build(name, seed=0, **kwargs):
    torch.manual_seed(seed)
    return memzoo.layers.build(name, d_model=D, **kwargs).eval()


def data(batch=2, seq_len=23, seed=1):
    return torch.randn(batch, seq_len, D, generator=torch.Generator().manual_seed(seed))


# ---- an explicit reference, sharing no code with the layers -----------------------------
def ref_rope(x, offset=0):
    """Rotate feature pairs (x_2i, x_2i+1) as complex numbers by pos * 10000^(-i/(Dh/2))."""
    half = x.shape[-1] // 2
    pos = torch.arange(offset, offset + x.shape[-2], dtype=torch.float64)
    freq = 10000.0 ** (-torch.arange(half, dtype=torch.float64) / half)
    angle = torch.outer(pos, freq)
    even, odd = x[..., 0::2].double(), x[..., 1::2].double()
    rotated_even = even * angle.cos() - odd * angle.sin()
    rotated_odd = odd * angle.cos() + even * angle.sin()
    return torch.stack((rotated_even, rotated_odd), dim=-1).flatten(-2).to(x.dtype)


def ref_attention(layer, x, allowed, score="dot", rope=True):
    """out(softmax(scores(q, k) masked by allowed(i, j)) v) in float64 with plain loops/reshapes."""
    p = {k: v.double() for k, v in layer.state_dict().items()}
    prefix = "attn." if "attn.qkv.weight" in p else ""
    b, t, _ = x.shape
    h = layer.num_heads if hasattr(layer, "num_heads") else layer.attn.num_heads
    dh = D // h
    qkv = x.double() @ p[prefix + "qkv.weight"].T + p[prefix + "qkv.bias"]
    q, k, v = (qkv[..., i * D : (i + 1) * D].reshape(b, t, h, dh).permute(0, 2, 1, 3) for i in range(3))
    if rope:
        q, k = ref_rope(q), ref_rope(k)
    if score == "dot":
        s = q @ k.transpose(-1, -2) / math.sqrt(dh)
    elif score == "cosine":
        tau = p[prefix + "log_scale"].exp().view(1, h, 1, 1)
        qn, kn = q / q.norm(dim=-1, keepdim=True), k / k.norm(dim=-1, keepdim=True)
        s = tau * qn @ kn.transpose(-1, -2)
    else:  # additive, Bahdanau: w_h . tanh(q_i + k_j)
        w = p[prefix + "additive_w"]
        s = torch.einsum("hd,bhijd->bhij", w, torch.tanh(q[:, :, :, None] + k[:, :, None]))
    mask = torch.tensor([[allowed(i, j) for j in range(t)] for i in range(t)])
    y = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1) @ v
    y = y.permute(0, 2, 1, 3).reshape(b, t, D)
    return y @ p[prefix + "out.weight"].T + p[prefix + "out.bias"]


def causal(i, j):
    return j <= i


# ---- whole == chunked == token by token, for the options the contract does not run ------
MODE_CASES = [
    ("attention", {"score": "cosine"}),
    ("attention", {"score": "additive"}),
    ("attention", {"score": "dot", "rope": False}),
    ("attention", {"score": "cosine", "rope": False}),
    ("attention", {"score": "additive", "rope": False}),
    ("attention", {"num_heads": 2}),
    ("sliding_window", {"window": 3, "rope": False}),
    ("sliding_window", {"window": 1}),
    ("sliding_window", {}),
    ("attention_lstm", {"score": "dot"}),
    ("attention_lstm", {"score": "cosine", "rope": False}),
]


@pytest.mark.parametrize("name,kwargs", MODE_CASES, ids=lambda c: str(c))
def test_whole_equals_chunked_equals_steps(name, kwargs):
    layer = build(name, **kwargs)
    x = data()
    with torch.no_grad():
        y, s = layer(x)
        y_s, s_s = run_steps(layer, x)
        assert_outputs_close(y_s, y)
        assert_states_close(s_s, s)
        for cuts in ([1, 2, 9], [11], [5, 6, 20]):
            y_c, s_c = run_chunked(layer, x, cuts)
            assert_outputs_close(y_c, y)
            assert_states_close(s_c, s)


# ---- agreement with the explicit reference ----------------------------------------------
@pytest.mark.parametrize("score", ["dot", "cosine", "additive"])
@pytest.mark.parametrize("rope", [True, False])
def test_attention_matches_naive_reference(score, rope):
    layer = build("attention", score=score, rope=rope)
    x = data(seq_len=17)
    with torch.no_grad():
        y, _ = layer(x)
        # also through a cache: the second chunk's queries must see the first chunk
        _, s = layer(x[:, :6])
        y2, _ = layer(x[:, 6:], s)
    ref = ref_attention(layer, x, causal, score, rope).float()
    assert_outputs_close(y, ref, tol=1e-5)
    assert_outputs_close(y2, ref[:, 6:], tol=1e-5)


def test_attention_lstm_matches_reference_attention_then_lstm():
    layer = build("attention_lstm", score="cosine")
    x = data(seq_len=12)
    with torch.no_grad():
        y, _ = layer(x)
        context = ref_attention(layer, x, causal, "cosine").float()
        y_ref, _ = layer.lstm(torch.cat((x, context), dim=-1))
    assert_outputs_close(y, y_ref, tol=1e-5)


def test_cosine_temperature_and_additive_vector_learn():
    for score, param in [("cosine", "log_scale"), ("additive", "additive_w")]:
        layer = build("attention", score=score).train()
        layer(data())[0].pow(2).mean().backward()
        grad = getattr(layer, param).grad
        assert grad is not None and grad.abs().sum() > 0, f"{param} got no gradient"


def test_no_cache_dot_path_uses_is_causal(monkeypatch):
    """The fast path must hand causality to SDPA (no explicit mask) when there is no cache."""
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    layer = build("attention")
    with torch.no_grad():
        _, s = layer(data(seq_len=8))
        layer(data(seq_len=4), s)
    assert calls[0].get("is_causal") is True and calls[0].get("attn_mask") is None
    assert calls[1].get("is_causal", False) is False and calls[1]["attn_mask"] is not None


def test_additive_query_blocks_equal_one_block(monkeypatch):
    q, k = torch.randn(2, 3, 10, 4), torch.randn(2, 3, 7, 4)
    w = torch.randn(3, 4)
    whole = score_ops.additive_scores(q, k, w)
    # 3 queries a block
    monkeypatch.setattr(score_ops, "ADDITIVE_BLOCK_ELEMENTS", 2 * 3 * 7 * 4 * 3)
    blocked = score_ops.additive_scores(q, k, w)
    torch.testing.assert_close(blocked, whole, rtol=0, atol=0)
    ref = torch.einsum("hd,bhijd->bhij", w, torch.tanh(q[:, :, :, None] + k[:, :, None]))
    torch.testing.assert_close(whole, ref)


# ---- sliding window ---------------------------------------------------------------------
@pytest.mark.parametrize("rope", [True, False])
@pytest.mark.parametrize("query_block", [None, 4])
def test_sliding_window_equals_band_masked_attention(rope, query_block, monkeypatch):
    if query_block is not None:  # force several query blocks in the whole-sequence path
        monkeypatch.setattr(sliding_module, "MIN_QUERY_BLOCK", query_block)
    window = 3
    layer = build("sliding_window", window=window, rope=rope)
    x = data(seq_len=20)
    with torch.no_grad():
        y, s = layer(x)
        y_steps, s_steps = run_steps(layer, x)
    ref = ref_attention(layer, x, lambda i, j: 0 <= i - j < window, "dot", rope).float()
    assert_outputs_close(y, ref, tol=1e-5)
    assert_outputs_close(y_steps, ref, tol=1e-5)
    assert s.k.shape[2] == window and s.pos.tolist() == [20, 20]
    assert_states_close(s_steps, s)


def test_sliding_window_with_a_large_window_is_full_attention():
    sw = build("sliding_window", window=64)
    attn = build("attention", seed=5)
    attn.load_state_dict(sw.state_dict())  # same projections
    x = data(seq_len=30)
    with torch.no_grad():
        assert_outputs_close(sw(x)[0], attn(x)[0], tol=1e-5)


def test_tokens_beyond_the_window_have_no_influence():
    window, t = 4, 16
    layer = build("sliding_window", window=window)
    x = data(seq_len=t)
    x2 = x.clone()
    x2[:, 2] += 5.0  # perturb token 2: it is seen by positions 2..5 only
    with torch.no_grad():
        y, y2 = layer(x)[0], layer(x2)[0]
        # the same holds through the recurrent path
        y2_steps = run_steps(layer, x2)[0]
    changed = (y - y2).abs().amax(dim=(0, 2))  # [T]
    assert (changed[2 : 2 + window] > 1e-3).all()
    assert changed[:2].max() == 0
    assert changed[2 + window :].max() < 1e-6
    assert_outputs_close(y2_steps, y2)


def test_sliding_window_state_stays_bounded():
    layer = build("sliding_window", window=5)
    with torch.no_grad():
        _, s = layer(data(seq_len=3))
        assert s.k.shape[2] == 3
        for _ in range(4):
            _, s = layer(data(seq_len=4), s)
    assert s.k.shape[2] == 5 and s.pos.tolist() == [19, 19]
    assert layer.state_size(19) == memzoo.layers.base.state_nbytes_per_sequence(s)
    assert layer.state_size(1000) == layer.state_size(5)


# ---- attention_lstm: the attention actually weighs the context --------------------------
def test_attention_lstm_weights_are_a_distribution_that_varies():
    layer = build("attention_lstm")
    x = data(seq_len=10)
    with torch.no_grad():
        w = layer.attention_weights(x)  # [B, H, T, T]
    assert w.shape == (2, 4, 10, 10)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 10))  # the seed's rows summed to t+1
    assert (w.triu(1) == 0).all(), "future tokens must get weight 0"
    uniform = torch.tril(torch.ones(10, 10)) / torch.arange(1, 11).unsqueeze(1)
    assert (w - uniform).abs().amax(dim=-1)[..., 1:].min() > 1e-3, "weights do not depend on keys"


def test_attention_lstm_attends_to_the_earlier_token_that_matches_the_query():
    layer = build("attention_lstm", num_heads=1, rope=False)
    with torch.no_grad():  # q = k = 4 x (identity projections), so the score is 16 x.x / 4
        eye = torch.eye(D)
        layer.attn.qkv.weight.copy_(torch.cat((4 * eye, 4 * eye, eye)))
        layer.attn.qkv.bias.zero_()
    e = torch.eye(D)
    for target in (0, 1):
        x = torch.stack((e[0], e[1], e[2], e[target]))[None]  # query at t=3 equals token `target`
        with torch.no_grad():
            w = layer.attention_weights(x)[0, 0, 3]  # [4]
        others = [j for j in range(3) if j != target]  # (the query itself, t=3, ties target)
        assert w[target] > 0.4 and (w[target] > 10 * w[others]).all()


# ---- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,kwargs,pattern",
    [
        (
            "attention",
            {"num_heads": 3},
            r"num_heads=3 .*d_model=16.*allowed num_heads: \[1, 2, 4, 8, 16\]",
        ),
        ("attention", {"num_heads": 0}, "num_heads must be a positive integer"),
        ("attention", {"score": "dotp"}, r"score must be one of \['dot', 'cosine', 'additive'\]"),
        ("attention", {"num_heads": 16}, "rope=True needs an even head width"),
        ("attention", {"rope": "yes"}, "rope must be true or false"),
        ("sliding_window", {"window": 0}, "window must be an integer >= 1"),
        ("sliding_window", {"window": 2.5}, "window must be an integer >= 1"),
        ("sliding_window", {"num_heads": 5}, "sliding_window: num_heads=5"),
        ("attention_lstm", {"score": "bilinear"}, "attention_lstm: score must be one of"),
        ("attention_lstm", {"num_heads": 6}, "attention_lstm: num_heads=6"),
    ],
)
def test_bad_options_are_clear_errors(name, kwargs, pattern):
    with pytest.raises(memzoo.ConfigError, match=pattern):
        memzoo.layers.build(name, d_model=D, **kwargs)


def test_odd_head_width_works_without_rope():
    layer = build("attention", num_heads=16, rope=False)  # Dh = 1
    x = data(seq_len=6)
    with torch.no_grad():
        assert_outputs_close(run_steps(layer, x)[0], layer(x)[0])


def test_cached_rope_tables_equal_fresh_ones_and_work_after_inference_mode():
    from memzoo.layers import _attention_common as common

    for start, length in [(0, 7), (5, 70), (3, 1)]:
        cached = common.shared_rope_tables(start, length, 4, "cpu", torch.float32)
        fresh = common.rope_tables(torch.arange(start, start + length), 4, torch.float32)
        assert torch.equal(cached, fresh)
    common._TABLE_CACHE.clear()
    layer = build("attention")
    x = data(seq_len=9)
    with torch.inference_mode():  # the first call fills the cache inside inference mode
        y_inf, _ = layer(x)
    layer.train()
    y, _ = layer(x)
    y.sum().backward()  # a cached inference tensor could not be saved for backward
    assert_outputs_close(y.detach(), y_inf)


def test_rope_half_precision_path_rotates_like_the_complex_path():
    """bf16 (autocast) has no complex kernels: its real-arithmetic rotation must agree."""
    from memzoo.layers import _attention_common as common

    x = torch.randn(2, 3, 10, 8, generator=torch.Generator().manual_seed(0))
    rotation = common.rope_tables(torch.arange(5, 15), 8, torch.float32)
    full = common.apply_rope(x, rotation)
    half = common.apply_rope(x.bfloat16(), rotation).float()
    assert torch.allclose(full, half, atol=5e-2, rtol=2e-2)
    assert torch.allclose(full.norm(dim=-1), x.norm(dim=-1), rtol=1e-5)  # a rotation
    assert torch.allclose(full, ref_rope(x, offset=5), atol=1e-5)
