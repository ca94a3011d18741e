"""Ops behind the long-term layers: top-k search, the kNN ring store and the neural-memory
update, vs naive."""

from __future__ import annotations

import pytest
import torch

from memzoo.errors import ConfigError
from memzoo.ops.kv_ring import (
    KVRing,
    naive_ring_retrieve,
    naive_ring_write,
    ring_retrieve,
    ring_write,
    slot_write_numbers,
)
from memzoo.ops.neural_memory import (
    MLPMemory,
    chunk_gradient,
    chunk_neural_memory,
    chunk_update,
    mlp_forward,
    naive_neural_memory,
)
from memzoo.ops.topk_search import exact_topk, faiss_topk, naive_topk, topk_search


def _search_inputs(seed=0, n_keys=11):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 3, 7, 5, generator=g, dtype=torch.float64)
    keys = torch.randn(2, 3, n_keys, 5, generator=g, dtype=torch.float64)
    valid = torch.rand(2, 3, 7, n_keys, generator=g) > 0.4
    return q, keys, valid


@pytest.mark.parametrize("k", [1, 3, 20])  # 20 > keys: results padded with found=False
def test_exact_topk_matches_naive(k):
    q, keys, valid = _search_inputs()
    q.requires_grad_(True)
    keys.requires_grad_(True)
    exact, naive = exact_topk(q, keys, k, valid), naive_topk(q, keys, k, valid)
    assert exact.score.shape == (2, 3, 7, k)
    assert torch.equal(exact.found, naive.found)
    assert torch.equal(exact.index, naive.index)
    assert torch.allclose(exact.score[exact.found], naive.score[naive.found])
    # Scores are differentiable in q and keys, and the gradients agree.
    w = torch.randn(int(exact.found.sum()), dtype=torch.float64)
    g_exact = torch.autograd.grad((exact.score[exact.found] * w).sum(), (q, keys))
    g_naive = torch.autograd.grad((naive.score[naive.found] * w).sum(), (q, keys))
    for a, b in zip(g_exact, g_naive):
        assert torch.allclose(a, b)


def test_exact_topk_respects_mask_and_order():
    q, keys, valid = _search_inputs(seed=1)
    top = exact_topk(q, keys, 4, valid)
    picked_ok = valid.gather(-1, top.index)
    assert bool((picked_ok | ~top.found).all()), "a masked key was returned"
    finite = top.score.masked_fill(~top.found, -1e9)
    assert bool((finite[..., :-1] >= finite[..., 1:]).all()), "results not sorted by score"
    assert torch.equal(top.found.sum(-1), valid.sum(-1).clamp_max(4))


@pytest.mark.parametrize("k", [2, 8])
def test_faiss_topk_matches_exact(k):
    pytest.importorskip("faiss")
    q, keys, valid = _search_inputs(seed=2, n_keys=40)
    q, keys = q.float(), keys.float()
    exact, fast = exact_topk(q, keys, k, valid), faiss_topk(q, keys, k, valid)
    assert torch.equal(exact.found, fast.found)
    assert torch.equal(exact.index, fast.index)
    assert torch.allclose(exact.score[exact.found], fast.score[fast.found], atol=1e-5)
    no_mask = faiss_topk(q, keys, k)
    assert torch.equal(no_mask.index, exact_topk(q, keys, k).index)


def test_topk_search_rejects_unknown_backend():
    q, keys, _ = _search_inputs()
    with pytest.raises(ConfigError, match="backend"):
        topk_search(q, keys, 2, backend="annoy")


# --- kNN ring store ----------------------------------------------------------------------


def _ring(cap, written, seed=0, b=2, h=2, dh=5):
    """A ring after ``written`` writes; every slot random (empty ones too: they must be ignored)."""
    g = torch.Generator().manual_seed(seed)
    keys, values = (torch.randn(b, h, cap, dh, generator=g, dtype=torch.float64) for _ in range(2))
    return KVRing(keys, values, written)


def _entries(m, seed=1, b=2, h=2, dh=5):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, h, m, dh, generator=g, dtype=torch.float64) for _ in range(2))


@pytest.mark.parametrize("cap, written, m", [(4, 0, 3), (4, 2, 9), (3, 5, 1), (5, 7, 0), (1, 2, 4)])
def test_ring_write_matches_naive(cap, written, m):
    ring, new = _ring(cap, written), _entries(m)
    before = [t.clone() for t in ring[:2]]
    fast, naive = ring_write(ring, *new), naive_ring_write(ring, *new)
    assert fast.written == naive.written == written + m
    assert torch.equal(fast.keys, naive.keys) and torch.equal(fast.values, naive.values)
    assert all(torch.equal(a, b) for a, b in zip(ring[:2], before)), "ring_write mutated its input"


@pytest.mark.parametrize("n_writes", [0, 3, 5, 6, 13])
def test_ring_holds_the_newest_capacity_writes_in_slot_w_mod_c(n_writes):
    cap = 5
    ring = KVRing(torch.zeros(1, 1, cap, 1), torch.zeros(1, 1, cap, 1), 0)
    for w in range(n_writes):  # one write at a time, each entry holding its write number
        ring = ring_write(ring, torch.full((1, 1, 1, 1), float(w)), torch.full((1, 1, 1, 1), float(w)))
    numbers = slot_write_numbers(ring.written, cap)
    held = list(range(max(0, n_writes - cap), n_writes))
    assert sorted(int(w) for w in numbers if w >= 0) == held  # never more than C
    for w in held:
        assert int(ring.keys[0, 0, w % cap, 0]) == w and int(numbers[w % cap]) == w
    assert bool((numbers[min(n_writes, cap) :] == -1).all())  # empty slots are marked


def _sees(kind, n, m, seed=2):
    if kind == "window":  # the kNN layer's pattern: 0 until entries leave, then one per query
        return (torch.arange(n) - 2).clamp(0, m)
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, m + 1, (n,), generator=g).sort().values  # non-decreasing, <= m


@pytest.mark.parametrize(
    "cap, written, m, sees, top_k",
    [
        (4, 0, 0, "window", 2),  # empty ring, nothing incoming: nothing found
        (4, 0, 7, "window", 2),  # starts empty, fills and wraps within the call
        (4, 6, 13, "random", 3),  # more incoming than capacity: early entries evicted
        (7, 3, 5, "random", 10),  # top_k > capacity
        (1, 9, 6, "window", 1),
        (5, 11, 12, "random", 5),
    ],
)
@pytest.mark.parametrize("backend", ["torch", "faiss"])
def test_ring_retrieve_matches_naive(cap, written, m, sees, top_k, backend):
    if backend == "faiss":
        pytest.importorskip("faiss")
    n = 8
    ring, incoming = _ring(cap, written), _entries(m)
    q = torch.randn(2, 2, n, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    leaves = [q, *ring[:2], *incoming]
    for t in leaves:
        t.requires_grad_(True)
    sees_i = _sees(sees, n, m)
    fast = ring_retrieve(q, ring, incoming, sees_i, top_k=top_k, backend=backend)
    naive = naive_ring_retrieve(q, ring, incoming, sees_i, top_k=top_k)
    assert torch.equal(fast.found, naive.found)
    assert torch.allclose(fast.read, naive.read, atol=1e-12)
    if not bool(fast.found.any()):
        return
    w = torch.randn(fast.read.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    g_fast = torch.autograd.grad((fast.read * w).sum(), leaves, allow_unused=True)
    g_naive = torch.autograd.grad((naive.read * w).sum(), leaves, allow_unused=True)
    for a, b in zip(g_fast, g_naive):  # None: no path to the read (counts as zero)
        if a is not None or b is not None:
            a = torch.zeros_like(b) if a is None else a
            b = torch.zeros_like(a) if b is None else b
            assert torch.allclose(a, b, atol=1e-12)


def _memory_inputs(seed=0, t_len=5, chunk=2):
    g = torch.Generator().manual_seed(seed)
    b, h, d, f = 2, 3, 4, 6

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).requires_grad_()

    mem = MLPMemory(rand(b, h, f, d, scale=0.5), rand(b, h, d, f, scale=0.5))
    momentum = MLPMemory(rand(b, h, f, d, scale=0.1), rand(b, h, d, f, scale=0.1))
    q, k, v = rand(b, h, t_len, d), rand(b, h, t_len, d), rand(b, h, t_len, d)
    theta = (0.1 * torch.rand(b, h, t_len, generator=g, dtype=torch.float64)).requires_grad_()
    n = t_len // chunk
    log_eta = (-torch.rand(b, h, n, generator=g, dtype=torch.float64)).requires_grad_()
    log_keep = (-0.1 * torch.rand(b, h, n, generator=g, dtype=torch.float64)).requires_grad_()
    gamma = rand(1, h, 1, d, scale=0.5)
    return q, k, v, theta, log_eta, log_keep, gamma, chunk, (mem, momentum)


def _flat(out, state):
    return torch.cat([out.flatten(), *(t.flatten() for part in state for t in part)])


@pytest.mark.parametrize("t_len, chunk", [(7, 2), (6, 3), (3, 4), (0, 2)])
def test_chunk_neural_memory_matches_token_by_token_autograd_reference(t_len, chunk):
    """Outputs, final memory and momentum, and every input's gradient agree (fp64); a
    trailing partial chunk is read but not written."""
    inputs = _memory_inputs(t_len=t_len, chunk=chunk)
    *tensors, size, (mem, momentum) = inputs
    leaves = [*tensors, *mem, *momentum]
    fast = _flat(*chunk_neural_memory(*inputs))
    ref = _flat(*naive_neural_memory(*inputs))
    assert torch.allclose(fast, ref, atol=1e-12)
    probe = torch.randn_like(fast)
    g_fast = torch.autograd.grad((fast * probe).sum(), leaves, allow_unused=True, materialize_grads=True)
    g_ref = torch.autograd.grad((ref * probe).sum(), leaves, allow_unused=True, materialize_grads=True)
    for a, b in zip(g_fast, g_ref):
        assert torch.allclose(a, b, atol=1e-10)


def test_chunk_neural_memory_reads_the_previous_chunks_memory():
    q, k, v, theta, log_eta, log_keep, gamma, chunk, state = _memory_inputs(t_len=6, chunk=3)
    out, _ = chunk_neural_memory(q, k, v, theta, log_eta, log_keep, gamma, chunk, state)
    assert torch.allclose(out[:, :, :3], mlp_forward(state[0], q[:, :, :3], gamma))  # initial weights
    first = (k[:, :, :3], v[:, :, :3], theta[:, :, :3], log_eta[..., 0], log_keep[..., 0], gamma)
    after_one, _ = chunk_update(*state, *first)
    assert torch.allclose(out[:, :, 3:], mlp_forward(after_one, q[:, :, 3:], gamma))


def test_chunk_step_is_the_sum_of_per_token_steps():
    """Titans takes one step per token; a chunk's gradient is their sum, not their mean.
    (The per-token loss is summed over features: the autograd reference above pins that.)"""
    _, k, v, theta, _, _, gamma, _, (mem, _) = _memory_inputs(t_len=4)
    whole = chunk_gradient(mem, k, v, theta, gamma)
    one = [(k[:, :, t : t + 1], v[:, :, t : t + 1], theta[:, :, t : t + 1]) for t in range(4)]
    parts = [chunk_gradient(mem, *token, gamma) for token in one]
    for i in range(2):
        assert torch.allclose(whole[i], sum(p[i] for p in parts))


def test_chunk_update_descends_the_associative_loss():
    _, k, v, _, _, _, gamma, _, (mem, _) = _memory_inputs(seed=3, t_len=5)
    zero = MLPMemory(torch.zeros_like(mem.w1), torch.zeros_like(mem.w2))
    no_gate = torch.zeros(k.shape[:2], dtype=k.dtype)  # eta = 1 (S0 = 0 anyway), alpha = 0

    def loss(m):
        return (mlp_forward(m, k, gamma) - v).pow(2).sum().item()

    # A small enough gradient step always descends (the step is -theta * the loss gradient).
    lr = 0.01 * torch.ones(k.shape[:3], dtype=k.dtype)
    new_mem, new_momentum = chunk_update(mem, zero, k, v, lr, no_gate, no_gate, gamma)
    assert loss(new_mem) < loss(mem)
    assert torch.allclose(new_mem.w1 - mem.w1, new_momentum.w1)  # W = W0 + S with alpha = 0
