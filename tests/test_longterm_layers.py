"""Long-term memory layers: persistent slots, memory tokens (RMT), kNN store, neural memory.

The registry-wide contract (whole == chunked == steps, state size, gradients) lives in
test_layer_contract.py; these tests check what each memory actually remembers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from contract import assert_outputs_close, assert_states_close, run_chunked, run_steps

import memzoo
from memzoo.layers.knn import load_store, save_store
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
        ("memory_tokens", {"segment_len": 0}),
        ("memory_tokens", {"xl_cache": "yes"}),
        ("knn", {"backend": "annoy"}),
        ("knn", {"capacity": 0}),
        ("neural_memory", {"chunk_size": 0}),
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
    # Without slots, position 0 can only read its own value.
    bare = build("persistent", num_slots=0)
    with torch.no_grad():
        y0, _ = bare(x[:, :1])
        _, _, v = bare.proj(x[:, :1])
        own = bare.out(v.transpose(1, 2).reshape(2, 1, D))
    assert torch.allclose(y0, own, atol=1e-6)


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
    """Per token: softmax over its last W tokens, top-K over tokens t-W-C+1 .. t-W, gated."""
    q, k, v = layer.proj(x)  # [B, H, T, Dh]
    batch, heads, t_len, dh = q.shape
    w, cap, top = layer.local_window, layer.capacity, layer.top_k
    out = torch.zeros_like(q)
    for b in range(batch):
        for h in range(heads):
            g = torch.sigmoid(layer.gate[h])
            for t in range(t_len):
                lo = max(0, t - w + 1)
                att = torch.softmax(k[b, h, lo : t + 1] @ q[b, h, t] / dh**0.5, dim=0)
                local = att @ v[b, h, lo : t + 1]
                stored = list(range(max(0, t - w - cap + 1), max(0, t - w + 1)))
                if not stored:
                    out[b, h, t] = local
                    continue
                scores = k[b, h, stored] @ q[b, h, t]
                best = scores.topk(min(top, len(stored))).indices
                att = torch.softmax(scores[best] / dh**0.5, dim=0)
                out[b, h, t] = g * (att @ v[b, h, [stored[i] for i in best]]) + (1 - g) * local
    return layer.out(out.transpose(1, 2).reshape(batch, t_len, -1))


def test_knn_matches_per_token_reference():
    layer = build("knn")
    with torch.no_grad():
        layer.gate.copy_(torch.tensor([-1.0, 0.0, 1.0, 2.0]))
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
    stored = state.store_k[0, 0]  # [C, Dh]
    match = (stored.unsqueeze(1) - keys[0, 0].unsqueeze(0)).abs().amax(-1) < 1e-6  # [C, T]
    held = sorted(int(j) for j in match.nonzero()[:, 1])
    assert held == list(range(extra, cap + extra)), "store should hold exactly the newest C"
    assert int(state.seen[0]) == x.shape[1]


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


def test_neural_memory_learns_pairs_at_test_time():
    layer = build("neural_memory", chunk_size=8)
    pairs = randn(1, 8, D, seed=4)  # 8 key -> value pairs, written once per chunk
    with torch.no_grad():
        _, k, v = layer.proj(pairs)
        k = F.normalize(k, dim=-1)

        def recall_error(state):
            return (mlp_forward(MLPMemory(state.w1, state.w2), k) - v).pow(2).mean().item()

        state = layer.init_state(1)
        errors = [recall_error(state)]
        for _ in range(5):
            _, state = layer(pairs, state)
            errors.append(recall_error(state))
    assert errors[-1] < 0.75 * errors[0], f"no test-time learning: {errors}"
    assert all(b < a for a, b in zip(errors, errors[1:])), f"recall error rose: {errors}"


def test_neural_memory_unfinished_chunk_reads_last_completed_weights():
    layer = build("neural_memory", chunk_size=4)
    x = randn(1, 8, D)
    x2 = x.clone()
    x2[:, 1] += 1.0
    with torch.no_grad():
        y, _ = layer(x)
        y2, _ = layer(x2)
    same = torch.isclose(y, y2, atol=1e-7).all(dim=-1)[0]  # [T]
    # Chunk 1 reads the initial weights: only token 1 itself changes; chunk 2 reads the update.
    assert same.tolist() == [True, False, True, True, False, False, False, False]
