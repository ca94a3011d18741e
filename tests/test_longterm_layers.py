"""Long-term memory layers: persistent slots, memory tokens (RMT), kNN store, neural memory.

The registry-wide contract (whole == chunked == steps, state size, gradients) lives in
test_layer_contract.py; these tests check what each memory actually remembers.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from contract import assert_outputs_close, assert_states_close, run_chunked, run_steps

import memzoo
import memzoo.layers.neural_memory as nm_layer
from memzoo.layers.knn import load_store, save_store
from memzoo.ops.kv_ring import naive_knn_read
from memzoo.ops.neural_memory import MLPMemory, mlp_forward

D = 16
LONG = ["persistent", "memory_tokens", "knn", "neural_memory"]
SMALL = {
    "persistent": {"num_slots": 4},
    "memory_tokens": {"segment_len": 5, "num_memory": 3},
    "knn": {"local_window": 4, "capacity": 6, "top_k": 3},
    "neural_memory": {"chunk_size": 4},
}


def build(name, seed=0, **kwargs):
    torch.manual_seed(seed)
    return memzoo.layers.build(name, d_model=D, **{**SMALL[name], **kwargs}).eval()


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", LONG)
def test_long_layers_are_causal(name):
    layer = build(name)
    x = randn(2, 23, D)
    x2 = x.clone()
    x2[:, 11] += 1.0
    with torch.no_grad():
        y, _ = layer(x)
        y2, _ = layer(x2)
    assert torch.equal(y[:, :11], y2[:, :11]), "a token's output depends on a later token"
    assert not torch.allclose(y[:, 11], y2[:, 11])
    assert memzoo.layers.info(name).kind == "long"


@pytest.mark.parametrize(
    "name, bad",
    [
        ("persistent", {"num_heads": 5}),
        ("persistent", {"num_slots": -1}),
        ("persistent", {"window": 0}),
        ("memory_tokens", {"segment_len": 0}),
        ("memory_tokens", {"xl_cache": "yes"}),
        ("knn", {"backend": "annoy"}),
        ("knn", {"capacity": 0}),
        ("neural_memory", {"chunk_size": 0}),
        ("neural_memory", {"conv_size": 0}),
        ("neural_memory", {"theta_max": 0.0}),
    ],
)
def test_bad_options_name_the_field(name, bad):
    field = next(iter(bad))
    with pytest.raises(memzoo.ConfigError, match=field):
        build(name, **bad)


# --- persistent ------------------------------------------------------------------------


def test_persistent_slots_are_read_at_position_zero():
    layer = build("persistent")
    x = randn(2, 6, D)
    y, _ = layer(x)
    y[:, 0].pow(2).sum().backward()
    assert layer.slot_k.grad.abs().sum() > 0 and layer.slot_v.grad.abs().sum() > 0
    with torch.no_grad():
        layer.slot_v.add_(1.0)
        y_moved, _ = layer(x)
    assert not torch.allclose(y_moved[:, 0], y[:, 0].detach())


@pytest.mark.parametrize("cuts", [[], [7, 20]])
def test_persistent_without_slots_is_its_sliding_window_base(cuts):
    """With num_slots=0 the layer equals a sliding window with the same weights: whatever it
    recalls beyond the window can only come from its slots, never from a cache."""
    bare = build("persistent", num_slots=0, window=5)
    base = memzoo.layers.build("sliding_window", d_model=D, window=5)
    missing, unexpected = base.load_state_dict(bare.state_dict(), strict=False)
    assert not missing and sorted(unexpected) == ["slot_k", "slot_v"]
    x = randn(2, 31, D)
    with torch.no_grad():
        y, s = run_chunked(bare, x, cuts)
        y_base, s_base = run_chunked(base, x, cuts)
    assert torch.equal(y, y_base)
    assert_states_close(s, s_base, tol=0.0)


def test_persistent_state_is_bounded_by_the_window():
    layer = build("persistent", window=5)
    sizes = {layer.state_size(t) for t in (5, 64, 4096)}
    assert len(sizes) == 1 and layer.state_size(4) < layer.state_size(5)
    assert memzoo.layers.info("persistent").state_growth == "O(window)"
    with torch.no_grad():
        _, state = layer(randn(1, 40, D))
    assert state.k.shape[2] == 5
    # A token more than `window` back cannot change the output: only the slots reach that far.
    x = randn(1, 12, D)
    x2 = x.clone()
    x2[:, 0] += 5.0
    with torch.no_grad():
        y, _ = layer(x)
        y2, _ = layer(x2)
    assert torch.allclose(y[:, 5:], y2[:, 5:]) and not torch.allclose(y[:, :5], y2[:, :5])


# --- memory tokens (RMT) ---------------------------------------------------------------


def _segments(layer, x, state=None):
    with torch.no_grad():
        return layer(x, state)


def test_rmt_segment_two_sees_segment_one_only_through_memory():
    layer = build("memory_tokens")  # segment_len 5, xl_cache off
    seg1_a, seg1_b, seg2 = randn(2, 5, D, seed=1), randn(2, 5, D, seed=2), randn(2, 5, D, seed=3)
    _, state_a = _segments(layer, seg1_a)
    _, state_b = _segments(layer, seg1_b)
    y_a, _ = _segments(layer, seg2, state_a)
    y_b, _ = _segments(layer, seg2, state_b)
    assert not torch.allclose(y_a, y_b), "segment 2 ignores segment 1"
    # Give run b the memory of run a: segment 2 then cannot tell the runs apart.
    y_swapped, _ = _segments(layer, seg2, state_b._replace(memory=state_a.memory))
    assert torch.allclose(y_swapped, y_a, atol=1e-6)
    # The gradient path from segment 2 back to segment 1 exists (through the memory).
    seg1 = seg1_a.clone().requires_grad_(True)
    _, state = layer(seg1)
    y2, _ = layer(seg2, state)
    y2.sum().backward()
    assert seg1.grad.abs().sum() > 0


def test_rmt_without_memory_segments_are_independent_and_xl_reaches_one_back():
    x = randn(1, 15, D)
    x2 = x.clone()
    x2[:, :5] = randn(1, 5, D, seed=9)  # only segment 1 differs
    plain = build("memory_tokens", num_memory=0)
    y, y2 = _segments(plain, x)[0], _segments(plain, x2)[0]
    assert torch.allclose(y[:, 5:], y2[:, 5:], atol=1e-6)
    xl = build("memory_tokens", num_memory=0, xl_cache=True)
    y, y2 = _segments(xl, x)[0], _segments(xl, x2)[0]
    assert not torch.allclose(y[:, 5:10], y2[:, 5:10]), "XL cache: segment 2 reads segment 1"
    assert torch.allclose(y[:, 10:], y2[:, 10:], atol=1e-6), "XL cache reaches one segment only"


def test_rmt_write_tokens_read_the_whole_segment_and_positions_count_inside_it():
    layer = build("memory_tokens")  # segment_len 5, 3 memory tokens
    x = randn(1, 10, D)
    with torch.no_grad():
        y, state = layer(x[:, :5])
        # The last token of a segment is seen by the write tokens: it changes the memory
        # and so every output of the next segment.
        x_last = x.clone()
        x_last[:, 4] += 1.0
        _, state_last = layer(x_last[:, :5])
        assert not torch.allclose(state_last.memory, state.memory)
        # An unfinished segment never changes the memory.
        _, partial = layer(x[:, :4])
        assert torch.equal(partial.memory, layer.init_state(1).memory)
        # The same token at another position inside its segment gives another output.
        same = x[:, :1].expand(1, 5, D).contiguous()
        y_same, _ = layer(same)
        assert not torch.allclose(y_same[:, 0], y_same[:, 1])
        # Positions restart in every segment: with no memory, segments are read alike.
        plain = build("memory_tokens", num_memory=0)
        y_rep, _ = plain(torch.cat((x[:, :5], x[:, :5]), dim=1))
        assert torch.allclose(y_rep[:, :5], y_rep[:, 5:], atol=1e-6)


@pytest.mark.parametrize("xl_cache", [False, True])
def test_rmt_contract_both_cache_modes(xl_cache):
    layer = build("memory_tokens", xl_cache=xl_cache)
    x = randn(2, 17, D)
    with torch.no_grad():
        y, s = layer(x)
        y_c, s_c = run_chunked(layer, x, [4, 5, 12])
        y_s, s_s = run_steps(layer, x)
    assert_outputs_close(y_c, y)
    assert_outputs_close(y_s, y)
    assert_states_close(s_c, s)
    assert_states_close(s_s, s)
    assert int(s.pos[0]) == 2 and int(s.done[0]) == 3


# --- kNN store -------------------------------------------------------------------------


def naive_knn(layer, x):
    """The layer's projections around ``naive_knn_read``, the per-token reference in ops/."""
    q, k, v = layer.proj(x)  # [B, H, T, Dh]
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    out = naive_knn_read(
        q,
        k,
        v,
        scale=layer.log_scale.exp(),
        gate=torch.sigmoid(layer.gate),
        window=layer.local_window,
        capacity=layer.capacity,
        top_k=layer.top_k,
    )  # [B, H, T, Dh]
    return layer.out(out.transpose(1, 2).reshape(x.shape))


def test_knn_matches_per_token_reference():
    layer = build("knn")
    with torch.no_grad():
        layer.gate.copy_(torch.tensor([-1.0, 0.0, 1.0, 2.0]))
        layer.log_scale.copy_(torch.tensor([0.5, 1.0, 2.0, 3.0]))
    x = randn(2, 19, D)
    with torch.no_grad():
        expected = naive_knn(layer, x)
        y, _ = layer(x)
        y_c, _ = run_chunked(layer, x, [3, 11])
    assert_outputs_close(y, expected, tol=1e-5)
    assert_outputs_close(y_c, expected, tol=1e-5)


@pytest.mark.parametrize("steps", [False, True])
def test_knn_fifo_eviction_drops_the_oldest(steps):
    cap, window, extra = 8, 2, 3
    layer = build("knn", capacity=cap, local_window=window)
    x = randn(1, window + cap + extra, D)  # cap + extra tokens leave the window
    with torch.no_grad():
        _, state = run_steps(layer, x) if steps else layer(x)
        _, keys, _ = layer.proj(x)  # [1, H, T, Dh]
        keys = F.normalize(keys, dim=-1)  # the store holds unit keys
    stored = state.store_k[0, 0]  # [C, Dh]
    match = (stored.unsqueeze(1) - keys[0, 0].unsqueeze(0)).abs().amax(-1) < 1e-6  # [C, T]
    held = sorted(int(j) for j in match.nonzero()[:, 1])
    assert held == list(range(extra, cap + extra)), "store should hold exactly the newest C"
    assert int(state.seen[0]) == x.shape[1]


@pytest.mark.parametrize("cuts", [[], [9, 10, 23], list(range(1, 40))])
def test_knn_retrieval_after_eviction_never_returns_an_evicted_key(cuts):
    """Every token repeats the one W + C earlier, which has just been evicted: with queries
    equal to keys it would be each query's exact best match. Top-1 retrieval must instead
    return a key still held (one of the last C to leave the window)."""
    window, cap = 3, 5
    layer = build("knn", local_window=window, capacity=cap, top_k=1, backend="torch")
    with torch.no_grad():
        wq, wk, wv = layer.proj.qkv.weight.chunk(3, dim=0)
        wq.copy_(wk)  # queries = keys: a token's own copy scores the maximum, 1 * scale
        layer.gate.fill_(30.0)  # sigmoid = 1 in fp32: the output is the store read alone
        layer.out.weight.copy_(torch.eye(D))
    period = window + cap
    x = randn(1, period, D).repeat(1, 5, 1)  # [1, 40, D]
    with torch.no_grad():
        y, _ = run_chunked(layer, x, cuts)
        _, _, v = layer.proj(x)  # [1, H, T, Dh]
    y = y.view(1, 40, layer.num_heads, -1).transpose(1, 2)  # [1, H, T, Dh]
    for t in range(window, 40):  # token t's store: tokens t-W-C+1 .. t-W (those that left)
        held = range(max(0, t - window - cap + 1), t - window + 1)
        dist = (v[0, :, list(held)] - y[0, :, t : t + 1]).abs().amax(-1)  # [H, held]
        assert bool((dist.amin(-1) < 1e-5).all()), f"token {t} read a value not in its store"
        if t >= period:  # the copy of x_t at t - period was evicted; its value is x_t's
            evicted = (v[0, :, t] - y[0, :, t]).abs().amax(-1)  # [H]
            assert bool((evicted > 1e-3).all()), f"token {t} retrieved its evicted copy"


def test_knn_gate_and_scale_learn_from_the_store_read():
    layer = build("knn", local_window=4, capacity=6).train()
    x = randn(2, 12, D)
    y, _ = layer(x)
    y[:, 4:].pow(2).mean().backward()  # tokens 4.. have a non-empty store
    for name in ("gate", "log_scale", "proj.qkv.weight"):
        grad = layer.get_parameter(name).grad
        assert grad is not None and bool((grad != 0).any()), f"{name} gets no gradient"
    assert bool((layer.gate.grad != 0).all()), "every head's gate learns"
    # While the store is empty (the first W tokens) the window is the only read: no gate gradient.
    layer.zero_grad()
    y, _ = layer(x[:, :4])
    y.pow(2).mean().backward()
    assert layer.gate.grad is None or not bool(layer.gate.grad.any())


def test_knn_store_saved_and_loaded_in_another_process(tmp_path):
    layer = build("knn", capacity=10, local_window=3, top_k=2)
    with torch.no_grad():
        _, state = layer(randn(2, 20, D, seed=1))
        query = randn(2, 5, D, seed=2)
        expected, _ = layer(query, state)
    save_store(state, tmp_path / "store.safetensors")
    torch.save(layer.state_dict(), tmp_path / "layer.pt")
    torch.save(query, tmp_path / "query.pt")
    script = textwrap.dedent(
        f"""
        import sys, torch, memzoo
        from memzoo.layers.knn import load_store
        torch.set_num_threads({torch.get_num_threads()})
        d = sys.argv[1]
        layer = memzoo.layers.build("knn", d_model={D}, capacity=10, local_window=3, top_k=2)
        layer.load_state_dict(torch.load(d + "/layer.pt"))
        with torch.no_grad():
            y, _ = layer.eval()(torch.load(d + "/query.pt"), load_store(d + "/store.safetensors"))
        torch.save(y, d + "/y.pt")
        """
    )
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(memzoo.__file__)))
    env = {**os.environ, "PYTHONPATH": package_root}  # the child imports this same memzoo
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, env=env)
    assert torch.equal(torch.load(tmp_path / "y.pt"), expected)
    loaded = load_store(tmp_path / "store.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(loaded, state))


def test_knn_load_rejects_other_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(memzoo.ConfigError, match="not a memzoo kNN store"):
        load_store(tmp_path / "other.safetensors")


def test_knn_faiss_backend_matches_exact():
    pytest.importorskip("faiss")
    exact = build("knn", backend="torch", capacity=12, top_k=4)
    fast = build("knn", backend="faiss", capacity=12, top_k=4)
    fast.load_state_dict(exact.state_dict())
    x = randn(2, 30, D)
    with torch.no_grad():
        y_exact, s_exact = exact(x)
        y_fast, s_fast = run_chunked(fast, x, [7, 20])
    assert_outputs_close(y_fast, y_exact, tol=1e-5)
    assert_states_close(s_fast, s_exact, tol=1e-6)
    auto = build("knn", capacity=32, faiss_min_store=32)
    assert auto.search_backend(torch.device("cpu")) == "faiss"
    small = build("knn", capacity=31, faiss_min_store=32)
    assert small.search_backend(torch.device("cpu")) == "torch"


# --- neural memory ---------------------------------------------------------------------


def _recall(layer, state, k):
    """What the memory in ``state`` returns for keys ``k`` ``[B, H, N, Dh]``."""
    gamma = layer.mem_gamma.view(layer.num_heads, 1, layer.head_dim)
    return mlp_forward(MLPMemory(state.w1, state.w2), k, gamma)


def _recall_error(layer, state, k, v):
    """Relative error of the memory in ``state`` on keys/values ``[B, H, N, Dh]``."""
    return ((_recall(layer, state, k) - v).pow(2).sum() / v.pow(2).sum()).item()


def binding(layer, state, k, v) -> tuple[float, float]:
    """How well the memory in ``state`` binds each key ``k_i`` to its own value ``v_i``
    (``[B, H, N, Dh]``), against the other values of the same set as the baseline.

    Returns ``(ratio, nearest)``: ``ratio`` = squared recall error on the pairs as written,
    divided by the mean error on the pairs with their values shuffled (every ``k_i -> v_j``,
    ``j != i``: the average over shuffles without a fixed point), 1 for a memory no closer to
    a key's own value than to the others (whatever it has learned of their mean or offset),
    0 for exact recall; ``nearest`` = the share of keys whose recall is nearer their own value
    than any other of the set (chance 1/N)."""
    dist = (_recall(layer, state, k).unsqueeze(-2) - v.unsqueeze(-3)).pow(2).sum(-1)  # [B, H, N, N]
    n = dist.shape[-1]
    own = dist.diagonal(dim1=-2, dim2=-1)  # [B, H, N]
    shuffled = (dist.sum(-1) - own) / (n - 1)
    nearest = (dist.argmin(-1) == torch.arange(n)).float().mean()
    return (own.sum() / shuffled.sum()).item(), nearest.item()


def _values_replaced_by_their_chunk_mean(op):
    """A broken write: each complete chunk writes its keys -> the mean of its values (the
    memory learns the values' offset, never which value goes with which key)."""

    def write(q, k, v, theta, log_eta, log_keep, gamma, chunk_size, initial_state):
        full = (v.shape[2] // chunk_size) * chunk_size
        chunks = v[:, :, :full].unflatten(2, (-1, chunk_size))  # [B, H, N, C, Dh]
        mean = chunks.mean(dim=3, keepdim=True).expand_as(chunks).flatten(2, 3)
        v = torch.cat((mean, v[:, :, full:]), dim=2)
        return op(q, k, v, theta, log_eta, log_keep, gamma, chunk_size, initial_state)

    return write


def _no_write(op):
    """A broken write: every step size is 0, so nothing is written (the decay still acts)."""

    def write(q, k, v, theta, *rest):
        return op(q, k, v, torch.zeros_like(theta), *rest)

    return write


BROKEN_WRITES = {"mean of the values only": _values_replaced_by_their_chunk_mean, "no write": _no_write}


def write_one_chunk(writes: int = 4):
    """Binding and relative error of one chunk of 8 pairs (one head of width 16, no
    convolution) at initialisation, and after each of ``writes`` writes of that chunk."""
    layer = build("neural_memory", num_heads=1, chunk_size=8, conv_size=1)
    pairs = randn(1, 8, D, seed=4)
    with torch.no_grad():
        state = layer.init_state(1)
        _, k, v, _ = layer.project(pairs, state.conv)
        bound, errors = [binding(layer, state, k, v)], [_recall_error(layer, state, k, v)]
        for _ in range(writes):
            _, state = layer(pairs, state)
            bound.append(binding(layer, state, k, v))
            errors.append(_recall_error(layer, state, k, v))
    return bound, errors


def assert_one_write_binds_its_pairs(bound, errors):
    """One write of the chunk brings each key's recall well nearer its own value than the
    others (error ratio against shuffled values < 0.6, most keys nearest their own value);
    repeating the chunk binds more; the recall error itself halves and keeps falling."""
    ratios, nearest = [r for r, _ in bound], [n for _, n in bound]
    assert ratios[0] > 0.8, f"the memory binds the pairs before any write: {ratios}"
    assert ratios[1] < 0.6 and nearest[1] >= 0.5, f"one write does not bind its pairs: {bound}"
    assert ratios[-1] < ratios[1] and nearest[-1] >= 0.75, f"repeated writes do not bind more: {bound}"
    assert errors[1] < 0.5 * errors[0], f"one write barely changes the memory: {errors}"
    assert all(b < a for a, b in zip(errors, errors[1:])), f"recall error rose: {errors}"


def test_neural_memory_one_chunk_write_stores_most_of_its_pairs():
    """One chunk of 8 pairs written once binds them: each key's recall is much nearer its
    own value than the chunk's other values (the baseline: the same memory read with the
    values shuffled, so an offset or the values' mean learned by the write counts for
    nothing). Measured (seed 0): error ratio to shuffled 0.88 at initialisation, 0.38 after
    one write, 0.23 after four; keys nearest their own value 0.75, then 0.88 (chance 0.125)."""
    assert_one_write_binds_its_pairs(*write_one_chunk())


@pytest.mark.parametrize("broken", sorted(BROKEN_WRITES))
def test_neural_memory_write_check_fails_for_a_broken_write(broken, monkeypatch):
    """The check above fails for a memory whose write stores nothing, and for one whose
    write learns only the mean of the chunk's values (measured: error ratio to shuffled
    0.93 after one write and after four, keys nearest their own value 0.25). The latter
    still cuts the relative recall error from 3.45 to 1.19, which met the check the test
    had before (halved by one write, falling with every write)."""
    monkeypatch.setattr(nm_layer, "chunk_neural_memory", BROKEN_WRITES[broken](nm_layer.chunk_neural_memory))
    bound, errors = write_one_chunk()
    with pytest.raises(AssertionError):
        assert_one_write_binds_its_pairs(bound, errors)
    if broken == "mean of the values only":
        assert errors[1] < 0.5 * errors[0]  # what a plain error threshold cannot tell apart


def _marked_pairs_memory(decay: float | None = None):
    """One head of width 16, chunks of 16, no convolution; keys read features 1-7 of a
    token, values features 8-15 (a value is independent of its key, so other tokens teach the
    memory nothing about the pairs); the step-size gate reads only feature 0, a marker: +1 on
    the pairs (theta ~ theta_max), -1 on the other tokens (theta ~ 5e-5 theta_max).
    ``decay``: the forgetting gate alpha per chunk forced to this value."""
    layer = build("neural_memory", num_heads=1, chunk_size=16, conv_size=1)
    with torch.no_grad():
        w = layer.qkv.weight  # [3D, D]: query, key, value rows
        w[:, 0] = 0
        w[D : 2 * D, D // 2 :] = 0
        w[2 * D :, : D // 2] = 0
        layer.gates.weight[1] = 0  # gate rows (one head): momentum, step size, decay
        layer.gates.weight[1, 0] = 10.0
        if decay is not None:
            layer.gates.bias[2] = math.log(decay / (1 - decay))
    pairs, later = randn(1, 16, D, seed=5), randn(1, 4096, D, seed=6)
    pairs[..., 0], later[..., 0] = 1.0, -1.0
    return layer, pairs, later


def write_kept(layer, pairs, later) -> tuple[float, float]:
    """``(gain, kept)``: ``gain`` the share of the pairs' recall error one write of ``pairs``
    removes; ``kept`` the share of that improvement still there after the tokens ``later``,
    measured against the same tokens run without the write: (error of the memory that saw
    only ``later`` - error of the one that saw the write, then ``later``) / (error before -
    error after the write). 1: the write is all there; 0: nothing of it is left."""
    with torch.no_grad():
        start = layer.init_state(1)
        _, k, v, _ = layer.project(pairs, start.conv)
        _, written = layer(pairs, start)
        _, kept = layer(later, written)
        _, without = layer(later, start)
        before, after = (_recall_error(layer, s, k, v) for s in (start, written))
        with_write, without_write = (_recall_error(layer, s, k, v) for s in (kept, without))
    return (before - after) / before, (without_write - with_write) / (before - after)


def assert_write_kept(gain: float, kept: float) -> None:
    """The write changes the memory (removes over half the pairs' recall error) and keeps
    over a quarter of that after the later tokens."""
    assert gain > 0.5, f"the write barely changes the memory: {gain}"
    assert kept > 0.25, f"the write is lost after 4096 tokens: {kept}"


def test_neural_memory_keeps_a_write_over_4096_tokens_at_initialisation():
    """What survives 4096 tokens (256 chunks) of random inputs after a write of 16 pairs at
    initialisation, against the same tokens without the write. The random tokens are
    written too, each with a step size ~5e-5 of the pairs' (a gate reading a marker feature,
    as training teaches a write gate to pass over distractors): together about 1% of the
    pairs' write. So this measures the decay against interfering writes: at its initial
    value (alpha ~ 3e-4 per chunk: 92% of the weights left after 256 chunks) the write keeps
    about half of its effect (measured, seed 0: kept 0.47; 0.18 at alpha = 0.003), while a
    decay that forgets lets the weak writes take the memory over (alpha = 0.01, 8% of the
    weights left: kept -0.01; alpha = 0.5: 0.00).

    Not claimed: with every token written at the full step size, a write at initialisation
    is overwritten within a few chunks (measured on this memory: 14% of it left after one
    more chunk, 1% after 1024 tokens); keeping pairs through distractors is what training
    teaches the gates."""
    assert_write_kept(*write_kept(*_marked_pairs_memory()))


@pytest.mark.parametrize("decay", [0.01, 0.5])
def test_neural_memory_keep_check_fails_for_a_decay_that_forgets(decay):
    """A decay forced to 1% or 50% per chunk fails the keep check (measured kept: -0.01, 0.00).
    At 1% it passes the zero-input check the test had before: with zero inputs nothing is
    written, and the memory's output, RMS-normalised, hardly changes when every weight
    shrinks alike (relative recall error 13.1 before the write, 1.67 after it, 2.51 after
    4096 zeros: under that check's bound, 4.53)."""
    layer, pairs, later = _marked_pairs_memory(decay)
    with pytest.raises(AssertionError, match="lost after 4096 tokens"):
        assert_write_kept(*write_kept(layer, pairs, later))
    if decay == 0.01:
        with torch.no_grad():
            state = layer.init_state(1)
            _, k, v, _ = layer.project(pairs, state.conv)
            before = _recall_error(layer, state, k, v)
            _, state = layer(pairs, state)
            written = _recall_error(layer, state, k, v)
            _, state = layer(torch.zeros(1, 4096, D), state)
            later_error = _recall_error(layer, state, k, v)
        assert later_error < written + 0.25 * (before - written)  # the old check passes


def test_neural_memory_parameters_all_learn_and_the_start_memory_is_not_decayed():
    layer = build("neural_memory").train()
    x = randn(2, 12, D)
    y, _ = layer(x)
    y.pow(2).mean().backward()
    for name, param in layer.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"{name} gets no gradient"
    marked = {name for name, p in layer.named_parameters() if getattr(p, "_no_weight_decay", False)}
    assert marked == {"w1_init", "w2_init"}


def test_neural_memory_unfinished_chunk_reads_last_completed_weights():
    layer = build("neural_memory", chunk_size=4, conv_size=1)
    x = randn(1, 8, D)
    x2 = x.clone()
    x2[:, 1] += 1.0
    with torch.no_grad():
        y, _ = layer(x)
        y2, _ = layer(x2)
    same = torch.isclose(y, y2, atol=1e-7).all(dim=-1)[0]  # [T]
    # Chunk 1 reads the initial weights: only token 1 itself changes; chunk 2 reads the update.
    assert same.tolist() == [True, False, True, True, False, False, False, False]


def test_neural_memory_convolution_reaches_conv_size_minus_one_tokens_back():
    layer = build("neural_memory", chunk_size=16, conv_size=3)
    x = randn(1, 8, D)
    x2 = x.clone()
    x2[:, 1] += 1.0
    with torch.no_grad():
        y, _ = layer(x)
        y2, _ = layer(x2)
    same = torch.isclose(y, y2, atol=1e-7).all(dim=-1)[0]  # one chunk: reads only the start memory
    assert same.tolist() == [True, False, False, False, True, True, True, True]
