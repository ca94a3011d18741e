"""The growing KV cache: amortised in-place appends that no state a caller holds can see.

Covers the layers whose state is a growing cache (``attention``, ``attention_lstm``):
branches decoded from one state, a cache that regrows many times, callers' states left
untouched, transformed states, gradients, inference mode and the bytes a state reports.
"""

from __future__ import annotations

import pytest
import torch
from contract import assert_outputs_close, assert_states_close, run_chunked
from layer_cases import kwargs_for

import memzoo
from memzoo.layers._kv_cache import MIN_CAPACITY, append_kv, reserve_kv
from memzoo.layers.base import detach_state, map_state, state_nbytes_per_sequence, state_tensors

D_MODEL = 16
CACHE_LAYERS = ["attention", "attention_lstm"]


def make_layer(name, **options):
    torch.manual_seed(0)
    return memzoo.layers.build(name, d_model=D_MODEL, **{**kwargs_for(name), **options}).eval()


def snapshot(state):
    return [t.clone() for t in state_tensors(state)]


def assert_unchanged(state, before):
    after = state_tensors(state)
    assert len(after) == len(before)
    for i, (a, b) in enumerate(zip(after, before)):
        assert a.shape == b.shape and torch.equal(a, b), f"state tensor {i} changed"


def decode(layer, state, x):
    """Feed ``x [B, T, D]`` one token at a time from ``state``; outputs ``[B, T, D]``."""
    outs = []
    for t in range(x.shape[1]):
        y, state = layer(x[:, t : t + 1], state)
        outs.append(y)
    return torch.cat(outs, dim=1), state


@pytest.mark.parametrize("name", CACHE_LAYERS)
def test_two_branches_from_one_state_equal_each_decoded_alone(name):
    layer = make_layer(name)
    gen = torch.Generator().manual_seed(1)
    prefix, xa, xb = (torch.randn(2, n, D_MODEL, generator=gen) for n in (9, 6, 6))
    with torch.no_grad():
        _, s = layer(prefix[:, :7])
        _, s = decode(layer, s, prefix[:, 7:])  # s is now backed by a buffer with room to spare
        assert s.buffer is not None and s.buffer.capacity > s.k.shape[2]
        before = snapshot(s)
        # interleave the branches step by step, as beam search does
        sa, sb, ya, yb = s, s, [], []
        for t in range(xa.shape[1]):
            y, sa = layer(xa[:, t : t + 1], sa)
            ya.append(y)
            y, sb = layer(xb[:, t : t + 1], sb)
            yb.append(y)
        assert sa.buffer is s.buffer, "the first branch should append in place"
        assert sb.buffer is not s.buffer, "the second branch must copy, not overwrite the first"
        assert_unchanged(s, before)
        ya_alone, sa_alone = decode(layer, s, xa)
        y_whole_a, s_whole_a = layer(torch.cat((prefix, xa), dim=1))
        y_whole_b, s_whole_b = layer(torch.cat((prefix, xb), dim=1))
    assert_outputs_close(torch.cat(ya, dim=1), ya_alone, tol=1e-5)
    assert_states_close(sa, sa_alone, tol=1e-5)
    assert_outputs_close(torch.cat(ya, dim=1), y_whole_a[:, 9:])
    assert_outputs_close(torch.cat(yb, dim=1), y_whole_b[:, 9:])
    assert_states_close(sa, s_whole_a)
    assert_states_close(sb, s_whole_b)


@pytest.mark.parametrize("name", CACHE_LAYERS)
def test_repeated_steps_from_one_held_state_all_stay_right(name):
    layer = make_layer(name)
    gen = torch.Generator().manual_seed(2)
    prefix, x = torch.randn(1, 5, D_MODEL, generator=gen), torch.randn(4, 1, 1, D_MODEL, generator=gen)
    with torch.no_grad():
        _, s = decode(layer, None, prefix)
        before = snapshot(s)
        results = [layer(x[i], s) for i in range(4)]  # four continuations, all kept alive
        for i, (y, s_i) in enumerate(results):
            y_ref, s_ref = layer(torch.cat((prefix, x[i]), dim=1))
            assert_outputs_close(y, y_ref[:, -1:])
            assert_states_close(s_i, s_ref)
    assert_unchanged(s, before)


@pytest.mark.parametrize("name", CACHE_LAYERS)
def test_cache_regrown_many_times_equals_whole_sequence(name):
    layer = make_layer(name)
    x = torch.randn(2, 300, D_MODEL, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y_whole, s_whole = layer(x)
        y_step, s_step = decode(layer, None, x)
        cuts = [1, 2, 3, 20, 21, 60, 61, 62, 150, 151, 299]  # single tokens and chunks mixed
        y_chunk, s_chunk = run_chunked(layer, x, cuts)
    assert_outputs_close(y_step, y_whole)
    assert_states_close(s_step, s_whole)
    assert_outputs_close(y_chunk, y_whole)
    assert_states_close(s_chunk, s_whole)


def test_appends_are_amortised_a_few_buffers_for_many_tokens():
    layer = make_layer("attention")
    x = torch.randn(1, 300, D_MODEL)
    buffers, state = [], None
    with torch.no_grad():
        for t in range(x.shape[1]):
            _, state = layer(x[:, t : t + 1], state)
            if state.buffer is not None and (not buffers or buffers[-1] is not state.buffer):
                buffers.append(state.buffer)
    # capacities 16, 34, 70, 142, 286, 574: every other append wrote in place
    assert [b.capacity for b in buffers] == [MIN_CAPACITY, 34, 70, 142, 286, 574]
    assert state.buffer.length == 300 and state.k.shape[2] == 300


@pytest.mark.parametrize("name", CACHE_LAYERS)
def test_forward_leaves_the_callers_state_unchanged(name):
    layer = make_layer(name)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        _, s = decode(layer, None, torch.randn(3, 6, D_MODEL, generator=gen))
        held = [s]
        for n in (1, 1, 5, 1, 40):  # in place, then a chunk that outgrows the buffer
            before = snapshot(held[-1])
            _, nxt = layer(torch.randn(3, n, D_MODEL, generator=gen), held[-1])
            assert_unchanged(held[-1], before)
            held.append(nxt)
        snapshots = [snapshot(h) for h in held]
        layer(torch.randn(3, 2, D_MODEL, generator=gen), held[2])  # branch from the middle
        for h, before in zip(held, snapshots):
            assert_unchanged(h, before)


def test_transformed_states_copy_and_detached_states_stay_in_place():
    layer = make_layer("attention")
    x = torch.randn(4, 8, D_MODEL, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        _, s = decode(layer, None, x[:, :6])
        rows = torch.tensor([2, 2, 0, 1])  # a beam reorder, as seq2seq beam search does
        reordered = map_state(lambda t: t.index_select(0, rows), s)
        y, s_re = layer(x[rows, 6:7], reordered)
        y_ref, s_ref = layer(x[rows, :7])
        assert s_re.buffer is not s.buffer  # the reordered tensors are not views of the buffer
        assert_outputs_close(y, y_ref[:, -1:])
        assert_states_close(s_re, s_ref)
        _, s_det = layer(x[:, 6:7], detach_state(s))
        assert s_det.buffer is s.buffer  # detach keeps the storage: still in place


def test_gradients_unchanged_and_buffers_only_without_grad():
    layer = make_layer("attention").train()
    x = torch.randn(2, 12, D_MODEL, generator=torch.Generator().manual_seed(6))

    def grads(run):
        layer.zero_grad()
        xi = x.clone().requires_grad_(True)
        y, _ = run(xi)
        y.pow(2).sum().backward()
        return [xi.grad, *(p.grad for p in layer.parameters())]

    whole = grads(layer)
    chunked = grads(lambda xi: run_chunked(layer, xi, [3, 4, 5, 9]))
    for a, b in zip(chunked, whole):
        assert_outputs_close(a, b, tol=1e-5)
    with torch.no_grad():
        _, s = decode(layer, None, x[:, :5])
    assert s.buffer is not None
    # a buffered state continued with grad mode on: a plain cat, the buffer is not written
    before = s.buffer.k.clone()
    y, s_grad = layer(x[:, 5:], s)
    assert s_grad.buffer is None
    y.sum().backward()
    # Compared as bytes: the free positions past ``length`` are uninitialised memory
    # (new_empty), which may hold NaN bit patterns that a float equality calls unequal.
    assert torch.equal(s.buffer.k.view(torch.uint8), before.view(torch.uint8))


def test_inference_mode_buffer_continues_outside_inference_mode():
    layer = make_layer("attention")
    x = torch.randn(1, 6, D_MODEL)
    with torch.inference_mode():
        _, s = decode(layer, None, x[:, :4])
    with torch.no_grad():  # the inference-mode buffer cannot be written here: it copies
        y, s2 = layer(x[:, 4:5], s)
        y_ref, _ = layer(x[:, :5])
    assert s2.buffer is not s.buffer
    assert_outputs_close(y, y_ref[:, -1:])


@pytest.mark.parametrize("name", CACHE_LAYERS)
def test_state_bytes_count_length_not_capacity(name):
    layer = make_layer(name)
    with torch.no_grad():
        _, s = decode(layer, None, torch.randn(2, 20, D_MODEL))
    assert s.buffer.capacity > 20
    assert state_nbytes_per_sequence(s) == layer.state_size(20)


def test_append_kv_matches_cat_with_mixed_dtypes():
    k_old = torch.randn(1, 2, 3, 4, dtype=torch.float32)
    k_new = torch.randn(1, 2, 2, 4, dtype=torch.float64)
    with torch.no_grad():
        k, v, buffer = append_kv(k_old, k_old, None, k_new, k_new)
    assert k.dtype == torch.float64 and torch.equal(k, torch.cat((k_old, k_new), dim=2))
    assert buffer.length == 5 and buffer.capacity == MIN_CAPACITY
    with torch.no_grad(), pytest.raises(ValueError, match="cannot append"):
        append_kv(k, v, buffer, k_new[:, :1], k_new[:, :1])  # 1 head onto 2: no broadcasting


@pytest.mark.parametrize("name", CACHE_LAYERS)
def test_reserve_kv_allocates_the_prompt_once_and_no_decode_step_copies(name):
    layer = make_layer(name)
    x = torch.randn(2, 40, D_MODEL, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        y_plain, s_plain = decode(layer, layer(x[:, :30])[1], x[:, 30:])
        with reserve_kv(10):
            _, s = layer(x[:, :30]) if name == "attention" else layer(x[:, :30], None)
            first = s.buffer
            assert first is not None and first.capacity == 40  # the prompt plus the reserve
            y, s = decode(layer, s, x[:, 30:])
        assert s.buffer is first and first.length == 40  # every step wrote in place
    assert_outputs_close(y, y_plain)
    assert_states_close(s, s_plain)


def test_generate_copies_each_cache_once_whatever_the_number_of_new_tokens(monkeypatch):
    from memzoo.layers import _kv_cache

    copies = []
    grown = _kv_cache._grown
    monkeypatch.setattr(_kv_cache, "_grown", lambda *a: copies.append(a[2]) or grown(*a))
    torch.manual_seed(0)
    model = memzoo.models.SequenceModel(
        layers=["attention", "attention"], d_model=D_MODEL, vocab_size=11
    ).eval()
    prompt = torch.randint(0, 11, (2, 5))
    for new_tokens in (3, 40):
        copies.clear()
        out = model.generate(prompt, new_tokens, greedy=True)
        # k and v of each of the two layers, written once, at the prefill, with room for all
        assert copies == [max(MIN_CAPACITY, 5 + new_tokens)] * 4, copies
        ids = prompt
        for _ in range(new_tokens):  # the greedy continuation re-run in full
            ids = torch.cat((ids, model(ids)[0][:, -1].argmax(-1, keepdim=True)), dim=1)
        assert torch.equal(out, ids)


def test_reserve_kv_rejects_a_bad_count():
    with pytest.raises(ValueError, match="tokens must be an integer >= 0"):
        with reserve_kv(-1):
            pass
