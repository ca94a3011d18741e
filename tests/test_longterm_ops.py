"""Ops behind the long-term layers: top-k search and the neural-memory update, vs naive."""

from __future__ import annotations

import pytest
import torch

from memzoo.errors import ConfigError
from memzoo.ops.neural_memory import MLPMemory, chunk_update, mlp_forward, naive_chunk_update
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


def _memory_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    b, h, c, d, f = 2, 3, 5, 4, 6

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g, dtype=torch.float64) * scale).requires_grad_()

    mem = MLPMemory(rand(b, h, f, d), rand(b, h, d, f))
    momentum = MLPMemory(rand(b, h, f, d, scale=0.1), rand(b, h, d, f, scale=0.1))
    k, v = rand(b, h, c, d), rand(b, h, c, d)
    theta = torch.rand(b, h, c, generator=g, dtype=torch.float64).requires_grad_()
    log_eta = (-torch.rand(b, h, generator=g, dtype=torch.float64)).requires_grad_()
    log_keep = (-0.1 * torch.rand(b, h, generator=g, dtype=torch.float64)).requires_grad_()
    return mem, momentum, k, v, theta, log_eta, log_keep


def test_chunk_update_matches_autograd_reference_outputs_and_gradients():
    inputs = _memory_inputs()
    leaves = [*inputs[0], *inputs[1], *inputs[2:]]
    fast = chunk_update(*inputs)
    ref = naive_chunk_update(*inputs)
    flat_fast = torch.cat([t.flatten() for part in fast for t in part])
    flat_ref = torch.cat([t.flatten() for part in ref for t in part])
    assert torch.allclose(flat_fast, flat_ref, atol=1e-12)
    probe = torch.randn_like(flat_fast)
    g_fast = torch.autograd.grad((flat_fast * probe).sum(), leaves)
    g_ref = torch.autograd.grad((flat_ref * probe).sum(), leaves)
    for a, b in zip(g_fast, g_ref):
        assert torch.allclose(a, b, atol=1e-10)


def test_chunk_update_descends_the_associative_loss():
    mem, _, k, v, theta, _, _ = _memory_inputs(seed=3)
    zero = MLPMemory(torch.zeros_like(mem.w1), torch.zeros_like(mem.w2))
    no_gate = torch.zeros(k.shape[:2], dtype=k.dtype)  # eta = 1 (S0 = 0 anyway), alpha = 0

    def loss(m):
        return (mlp_forward(m, k) - v).pow(2).mean().item()

    # A small enough gradient step always descends (the step is -theta * the loss gradient).
    lr = 0.02 * torch.ones_like(theta)
    new_mem, new_momentum = chunk_update(mem, zero, k, v, lr, no_gate, no_gate)
    assert loss(new_mem) < loss(mem)
    assert torch.allclose(new_mem.w1 - mem.w1, new_momentum.w1)  # W = W0 + S with alpha = 0
