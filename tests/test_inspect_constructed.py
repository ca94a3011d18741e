"""Recall curves of hand-built memories have the shapes their mechanisms dictate.

Each test wires a real memzoo layer by hand (nothing is trained) so that the layer's own
mechanism does associative recall, then measures a curve with
:func:`memzoo.inspect.curves.recall_curve` and asserts the known shape: the probes, the
batching and the scoring of ``memzoo.inspect`` are under test as much as the layers.

The constructed recaller: token ids in the MQAR layout (keys, then values, then filler, as
disjoint id ranges) become per-position features ``x_t = [A(tok_t); B(tok_t); C(tok_{t-1})]``:

- A: the key embedding of the current token (zero unless it is a key): what a query asks with;
- B: the value embedding of the current token (zero unless it is a value): what is stored;
- C: the key embedding of the previous token (a hand-built previous-token feature, like a
  short convolution), so the value position ``2i+1`` carries its key ``2i`` in C.

The layer reads query <- A, key <- C, value <- B with one head, no RoPE, identity taps in its
short convolution, saturated write gates and an identity output projection, so its output's
B block is what it recalls. The logits are that block times the value embeddings (zero rows
for non-value tokens): the arg-max is the recalled value. Key ids start at 0, so an all-zero
read (nothing recalled) predicts token 0, a key, which is exactly wrong.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import memzoo
from memzoo.inspect.curves import recall_curve
from memzoo.inspect.probes import RecallLayout

SAMPLES = 64  # probe sequences per curve point
SHARP = 40.0  # softmax logit of a matching key (every other key scores 0)


# --- the constructed recaller ----------------------------------------------------------------


def one_hot_tables(layout: RecallLayout) -> tuple[torch.Tensor, torch.Tensor]:
    """``(key_table [V, dk], value_table [V, dv])``: one-hot embeddings of the layout's keys
    (dk = number of key ids) and values (dv = number of value ids), zero rows elsewhere."""
    return _tables(layout, torch.eye(_width(layout.keys)), torch.eye(_width(layout.values)))


def random_unit_tables(
    layout: RecallLayout, d_k: int, d_v: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Key and value embeddings that are random unit vectors in ``d_k`` / ``d_v`` dims
    (not orthogonal once there are more ids than dims: recall suffers crosstalk)."""
    gen = torch.Generator().manual_seed(seed)
    keys = nn.functional.normalize(torch.randn(_width(layout.keys), d_k, generator=gen), dim=-1)
    values = nn.functional.normalize(torch.randn(_width(layout.values), d_v, generator=gen), dim=-1)
    return _tables(layout, keys, values)


def _width(ids: tuple[int, int]) -> int:
    return ids[1] - ids[0]


def _tables(layout: RecallLayout, keys: torch.Tensor, values: torch.Tensor):
    vocab = max(layout.keys[1], layout.values[1], layout.filler[1])
    key_table = torch.zeros(vocab, keys.shape[1])
    value_table = torch.zeros(vocab, values.shape[1])
    key_table[layout.keys[0] : layout.keys[1]] = keys
    value_table[layout.values[0] : layout.values[1]] = values
    return key_table, value_table


class Recaller(nn.Module):
    """Token ids ``[B, T]`` -> ``(logits [B, T, V], state)`` around a hand-wired ``layer``
    of width ``d_k + d_v + d_k`` (blocks A, B, C of the module docstring)."""

    def __init__(self, layer: nn.Module, key_table: torch.Tensor, value_table: torch.Tensor):
        super().__init__()
        self.layer = layer
        self.register_buffer("key_table", key_table)
        self.register_buffer("value_table", value_table)
        self.d_k, self.d_v = key_table.shape[1], value_table.shape[1]

    def features(self, tokens: torch.Tensor) -> torch.Tensor:
        a = self.key_table[tokens]  # [B, T, dk]
        b = self.value_table[tokens]  # [B, T, dv]
        c = nn.functional.pad(a, (0, 0, 1, 0))[:, :-1]  # key embedding of the previous token
        return torch.cat((a, b, c), dim=-1)

    def forward(self, tokens: torch.Tensor):
        y, state = self.layer(self.features(tokens))
        read = y[..., self.d_k : self.d_k + self.d_v]  # the B block: the recalled value
        return read @ self.value_table.T, state


def _route(weight: torch.Tensor, d_k: int, d_v: int, query_scale: float = 1.0) -> None:
    """Fill a fused ``[3D, D]`` q/k/v projection (q rows first, then k, then v):
    q[A] <- scale * x[A], k[A] <- x[C], v[B] <- x[B]; zeros elsewhere."""
    d = 2 * d_k + d_v
    a, b, c = slice(0, d_k), slice(d_k, d_k + d_v), slice(d_k + d_v, d)
    weight.zero_()
    weight[a, a] = query_scale * torch.eye(d_k)  # rows 0 .. D-1: the query
    weight[d + a.start : d + a.stop, c] = torch.eye(d_k)  # rows D .. 2D-1: the key
    weight[2 * d + b.start : 2 * d + b.stop, b] = torch.eye(d_v)  # rows 2D .. 3D-1: the value


def _identity_taps(conv) -> None:
    """A ShortConv that passes the current token through: its last tap (``taps[:, K-1]``
    multiplies ``x_t``, the earlier taps the cached previous inputs)."""
    conv.weight.zero_()
    conv.weight[:, 0, -1] = 1.0


@torch.no_grad()
def sliding_window_recaller(layout, window: int) -> Recaller:
    """Softmax attention over the last ``window`` tokens, matching query A to key C."""
    key_table, value_table = one_hot_tables(layout)
    d_k, d_v = key_table.shape[1], value_table.shape[1]
    d = 2 * d_k + d_v
    layer = memzoo.layers.build("sliding_window", d_model=d, window=window, num_heads=1, rope=False)
    _route(layer.qkv.weight, d_k, d_v, query_scale=SHARP * math.sqrt(d))  # SDPA divides by sqrt(Dh)
    layer.qkv.bias.zero_()
    layer.out.weight.copy_(torch.eye(d))
    layer.out.bias.zero_()
    return Recaller(layer, key_table, value_table)


@torch.no_grad()
def deltanet_recaller(layout, beta_logit: float = 20.0) -> Recaller:
    """DeltaNet with write strength ``beta = sigmoid(beta_logit)`` (about 1 by default)."""
    key_table, value_table = one_hot_tables(layout)
    d_k, d_v = key_table.shape[1], value_table.shape[1]
    d = 2 * d_k + d_v
    layer = memzoo.layers.build("deltanet", d_model=d, num_heads=1, algorithm="chunked")
    _route(layer.qkv_proj.weight, d_k, d_v)  # q, k are L2-normalised after SiLU: scale is moot
    _identity_taps(layer.conv)
    layer.b_proj.weight.zero_()
    layer.b_proj.bias.fill_(beta_logit)
    layer.norm.weight.fill_(1.0)
    layer.o_proj.weight.copy_(torch.eye(d))
    return Recaller(layer, key_table, value_table)


@torch.no_grad()
def linear_attention_recaller(layout, tables=None) -> Recaller:
    """Linear attention, identity feature map: ``S += k v^T``, read ``S^T q`` (a sum memory)."""
    key_table, value_table = tables if tables is not None else one_hot_tables(layout)
    d_k, d_v = key_table.shape[1], value_table.shape[1]
    d = 2 * d_k + d_v
    layer = memzoo.layers.build("linear_attention", d_model=d, num_heads=1, feature_map="identity")
    fused = torch.zeros(3 * d, d)
    _route(fused, d_k, d_v)
    layer.q_proj.weight.copy_(fused[:d])
    layer.k_proj.weight.copy_(fused[d : 2 * d])
    layer.v_proj.weight.copy_(fused[2 * d :])
    _identity_taps(layer.conv)
    layer.norm.weight.fill_(1.0)
    layer.o_proj.weight.copy_(torch.eye(d))
    return Recaller(layer, key_table, value_table)


@torch.no_grad()
def knn_recaller(layout, local_window: int, capacity: int, top_k: int = 2) -> Recaller:
    """kNN memory: local softmax window + top-k over a FIFO store; gate 0 mixes them evenly.

    With top_k >= 2 the window's recall (weight 1/2) beats whatever a store holding only
    non-matching keys returns (each of its top-k values weighs 1/(2 top_k))."""
    key_table, value_table = one_hot_tables(layout)
    d_k, d_v = key_table.shape[1], value_table.shape[1]
    d = 2 * d_k + d_v
    layer = memzoo.layers.build(
        "knn",
        d_model=d,
        num_heads=1,
        local_window=local_window,
        capacity=capacity,
        top_k=top_k,
        backend="torch",
    )
    _route(layer.proj.qkv.weight, d_k, d_v)  # q, k are unit-normalised; the scale is log_scale
    layer.log_scale.fill_(math.log(SHARP))
    layer.gate.zero_()
    layer.out.weight.copy_(torch.eye(d))
    return Recaller(layer, key_table, value_table)


def mqar_layout(seq_len: int, num_pairs: int, ids: int | None = None) -> RecallLayout:
    """Keys ``[0, n)``, values ``[n, 2n)``, filler ``[2n, 2n + 8)`` with n = ``ids`` (default:
    the fewest ids the layout accepts, ``seq_len // 4``)."""
    n = ids or seq_len // 4
    return RecallLayout(seq_len, num_pairs, keys=(0, n), values=(n, 2 * n), filler=(2 * n, 2 * n + 8))


def curve(model, layout, name: str, seed: int = 0) -> dict[int, dict]:
    """``{x: point}`` of the ``name`` curve."""
    points = recall_curve(model, layout, name, samples=SAMPLES, seed=seed)["points"]
    return {p["x"]: p for p in points}


def accuracies(points: dict[int, dict]) -> dict[int, float]:
    return {x: round(p["accuracy"], 4) for x, p in sorted(points.items())}


def assert_drop_at(points: dict[int, dict], edge: int) -> None:
    """Accuracy exactly 1 at every x < ``edge`` and exactly 0 at every x >= ``edge``, with
    curve points on both sides of the edge."""
    xs = sorted(points)
    below, above = [x for x in xs if x < edge], [x for x in xs if x >= edge]
    assert below and above, f"no curve points on both sides of {edge}: {xs}"
    got = accuracies(points)
    want = {x: 1.0 if x < edge else 0.0 for x in xs}
    assert got == want, f"drop expected at x = {edge}: got {got}"


# --- forgetting: a window of W tokens ----------------------------------------------------------

# T=64, K=4: the forgetting curve's lags are 1, 3, 5, 9, 11, 15, 21, 29, 41, 55.
FORGET_LAYOUT = dict(seq_len=64, num_pairs=4)
WINDOW = 10  # lag 9 is inside the window, lag 11 outside
KNN_WINDOW, KNN_CAPACITY = 4, 6  # window: lags 1, 3; store: lags 5, 9; gone from lag 11


def test_sliding_window_recalls_exactly_the_lags_inside_its_window():
    """Sliding-window attention sees the tokens at lags 0 .. W-1 only: the forgetting curve is
    1.0 at every lag < W and 0.0 at every lag >= W (nothing of the pair is visible then)."""
    layout = mqar_layout(**FORGET_LAYOUT)
    points = curve(sliding_window_recaller(layout, WINDOW), layout, "forgetting")
    assert {9, 11} <= set(points)  # the lags either side of the edge are probed
    assert_drop_at(points, WINDOW)


def test_knn_memory_forgets_exactly_when_a_token_leaves_its_store():
    """kNN memory: a token is in the local window at lags < W, then in the FIFO store of the
    C most recent tokens that left the window, so it is visible iff lag < W + C (the store's
    capacity C counted from the window's edge); the curve is 1.0 across both reads (lags
    < W from the window, W <= lag < W + C from the store) and 0.0 from lag W + C on."""
    local_window, capacity = KNN_WINDOW, KNN_CAPACITY
    layout = mqar_layout(**FORGET_LAYOUT)
    points = curve(knn_recaller(layout, local_window, capacity), layout, "forgetting")
    read_from_store = [x for x in points if local_window <= x < local_window + capacity]
    assert sorted(read_from_store) == [5, 9]  # the store, not only the window, answers some points
    assert_drop_at(points, local_window + capacity)


@pytest.mark.parametrize(
    ("variant", "built_edge"),
    [("window", 6), ("window", 12), ("store", 2)],
    ids=["window-too-short", "window-too-long", "store-too-small"],
)
def test_a_miswired_memory_moves_the_drop_and_the_curve_shows_it(variant, built_edge):
    """A memory built with the wrong size (window W' != W, or a store of C' != C) forgets at
    its own edge: the curve is not the designed one (some lag between the two edges flips),
    and it matches the edge that was actually built."""
    layout = mqar_layout(**FORGET_LAYOUT)
    if variant == "window":
        designed_edge = WINDOW
        model = sliding_window_recaller(layout, built_edge)
    else:
        designed_edge = KNN_WINDOW + KNN_CAPACITY
        model = knn_recaller(layout, local_window=KNN_WINDOW, capacity=built_edge)
        built_edge += KNN_WINDOW
    points = curve(model, layout, "forgetting")
    lo, hi = sorted((designed_edge, built_edge))
    flipped = [x for x in points if lo <= x < hi]
    assert flipped, f"no probed lag between the edges {lo} and {hi}: {sorted(points)}"
    want_designed = {x: 1.0 if x < designed_edge else 0.0 for x in points}
    assert accuracies(points) != want_designed
    assert_drop_at(points, built_edge)


# --- overwrite: the delta rule replaces, a sum memory adds --------------------------------------

OVERWRITE_LAYOUT = dict(seq_len=64, num_pairs=8)  # x = pairs between the writes: 0 .. 6


def test_deltanet_overwritten_key_returns_the_latest_value():
    """The delta rule with beta = 1 replaces what the memory holds for a key
    (``S += k (v - S^T k)^T``): a key re-bound by the last pair recalls the new value, never
    the old one, however many pairs lie between the two writes."""
    layout = mqar_layout(**OVERWRITE_LAYOUT)
    points = curve(deltanet_recaller(layout), layout, "overwrite")
    assert sorted(points) == list(range(7))
    for x, p in points.items():
        assert p["accuracy"] >= 0.99 and p["stale"] <= 0.01, (x, p)


def test_linear_attention_cannot_overwrite_a_key():
    """Linear attention only adds (``S += k v^T``): a key written twice reads ``v1 + v2``, an
    exact tie between the old and the new value, so it answers stale as often as latest."""
    layout = mqar_layout(**OVERWRITE_LAYOUT)
    points = curve(linear_attention_recaller(layout), layout, "overwrite")
    for x, p in points.items():
        assert p["stale"] >= 0.3 and p["accuracy"] >= 0.3, (x, p)
        assert p["stale"] + p["accuracy"] >= 0.99, (x, p)  # it answers one of the two, nothing else


def test_deltanet_with_a_weak_write_still_prefers_the_latest_value():
    """A partial write (beta = 0.5) leaves part of the old value: after ``v1`` then ``v2`` on
    one key the memory reads ``beta (1 - beta) v1 + beta v2`` -- the old value is no longer
    erased (the stale logit is not 0) but the latest still wins the arg-max for every beta,
    so the overwrite curve alone does not separate beta = 0.5 from beta = 1; the read does."""
    layout = mqar_layout(**OVERWRITE_LAYOUT)
    points = curve(deltanet_recaller(layout, beta_logit=0.0), layout, "overwrite")
    for x, p in points.items():
        assert p["accuracy"] >= 0.99 and p["stale"] <= 0.01, (x, p)
    # the logits themselves show the residue of v1: stale / latest = (1 - beta) = 0.5
    model = deltanet_recaller(layout, beta_logit=0.0).eval()
    k1, v1, v2 = 0, layout.values[0], layout.values[0] + 1
    tokens = torch.tensor([[k1, v1, k1, v2, layout.filler[0], k1]])  # write k1->v1, k1->v2, filler, ask k1
    with torch.no_grad():
        logits, _ = model(tokens)
    stale, latest = logits[0, -1, v1].item(), logits[0, -1, v2].item()
    assert stale / latest == pytest.approx(0.5, rel=1e-3)
    with torch.no_grad():
        strong, _ = deltanet_recaller(layout).eval()(tokens)
    assert strong[0, -1, v1].abs().item() < 1e-3 * strong[0, -1, v2].item()


# --- capacity: a sum memory runs out of key dimensions ------------------------------------------

D_KEY = 8
D_VALUE = 16  # values crowd 16 dims too: a read mixing stored values lands near other values


def test_linear_attention_recall_falls_as_pairs_exceed_its_key_dimension():
    """A linear-attention memory is a sum of outer products ``k v^T``: with keys that are random
    unit vectors in d_k = 8 dims the read of one key picks up every other stored value with
    weight ``cos(k_i, k_j)``, so recall is near perfect for K' <= d_k / 2 pairs and falls well
    below once K' reaches 4 d_k. The same memory with orthogonal (one-hot) keys, as many key
    dims as key ids, recalls every pair at every K': the fall is the key dimension's."""
    layout = mqar_layout(seq_len=16 * D_KEY, num_pairs=4)  # holds up to 32 = 4 d_k pairs
    tables = random_unit_tables(layout, d_k=D_KEY, d_v=D_VALUE, seed=0)
    acc = accuracies(curve(linear_attention_recaller(layout, tables), layout, "capacity"))
    xs = sorted(acc)
    assert xs[0] == 1 and xs[-1] >= 4 * D_KEY, xs
    for x in xs:
        if x <= D_KEY // 2:
            assert acc[x] >= 0.9, acc
        if x >= 4 * D_KEY:
            assert acc[x] <= 0.5, acc
    assert acc[xs[-1]] < acc[xs[0]]
    steps = [acc[a] - acc[b] for a, b in zip(xs, xs[1:])]
    assert min(steps) >= -0.05, acc  # falls monotonically, up to sampling noise

    orthogonal = (one_hot_tables(layout)[0], tables[1])  # 32 one-hot keys, the same values
    acc = accuracies(curve(linear_attention_recaller(layout, orthogonal), layout, "capacity"))
    assert acc == dict.fromkeys(xs, 1.0), acc
