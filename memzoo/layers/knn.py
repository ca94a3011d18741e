"""kNN memory: an external key/value store searched by top-k (Memorizing Transformers).

Shape legend: B batch, H heads, T new tokens, W local_window, C capacity, K top_k,
D d_model, Dh = D / H, m = valid window rows + T (the "context" of one call), n queries of
one block.

Wu et al. 2022, "Memorizing Transformers". Each head keeps two memories of the past:

* a **local window** of the W most recent tokens (the query's own token included), read by
  causal softmax attention;
* a **store** of the keys/values of the tokens that left the window (per batch row, per
  head), read by exact top-K search: a query attends (softmax) over its K best-scoring
  stored keys only.

Queries and keys are L2-normalised per head and scores are ``s_h * cos(q, k)`` with a learned
per-head scale ``s_h`` (initially 20, as in the reference implementation
lucidrains/memorizing-transformers-pytorch): the paper normalises them so that keys stored
long ago, by an earlier version of the weights during training, stay comparable with fresh
ones. The two reads are mixed by a learned per-head gate ``g = sigmoid(gate_h)`` (the paper's
``b_g``): ``out = g * store_read + (1 - g) * local_read``; a query whose store is still empty
reads the window only. The gate gets gradient from every query whose store is not empty, so
training on sequences whose answers lie further back than the window teaches it to read.

**What a token sees** (this is what makes whole == chunked == token by token hold): the token
at position t attends locally to positions ``t-W+1 .. t`` and retrieves from the store that
holds every token ``<= t-W`` (tokens move into the store as they leave the window), minus
those evicted. Nothing depends on where chunks start, because tokens that leave the window
inside a chunk are searched together with the store, each query seeing only those older than
its own window.

**Capacity.** The store holds the C most recently written tokens: a ring buffer with
first-in-first-out eviction (the oldest entry is overwritten), never a silent reset. The ring,
its slot arithmetic and its search live in ``memzoo/ops/kv_ring.py`` (``KVRing``,
``ring_write``, ``ring_retrieve``, with per-token ``naive_*`` references).

**Gradients.** Store writes are not differentiable: keys/values are detached when they leave
the window, so no gradient flows through the store (``state_differentiable = False``).
Gradients do flow through the query, the gate, the scale and the local window path (and
through the window buffer carried in the state).

**Backends.** Exact search in torch by default; FAISS (optional extra ``faiss-cpu``) with
``backend="faiss"``, or automatically (``backend="auto"``) for CPU stores with
``capacity >= faiss_min_store``. FAISS only proposes indices; scores are recomputed in torch.

**Views** (see ``base.py``). ``write_gates(x)["gate"]`` ``[B, T, H]`` is the mix as applied:
``sigmoid(gate_h)`` (a parameter, so constant over tokens) where the query's store holds
something, 0 where it is still empty (tokens ``t < W`` of a fresh sequence).
``read_weights(x)`` gives the two reads over the sequence's positions, ``[B, H, T, T]`` each:
``local`` (softmax over ``t-W+1 .. t``) and ``retrieved`` (softmax over the top-K of the stored
``t-W-C+1 .. t-W``, zero elsewhere); ``attention_weights(x) = gate * retrieved + (1 - gate) *
local`` is the whole read, rows summing to 1 (the store of a fresh sequence holds its own
earlier tokens, so a retrieved token is reported at its position, not off the sequence).

**Persistence.** ``save_store(state, path)`` writes the whole state (store, window, counter)
to a safetensors file; ``load_store(path)`` reads it back in any process, and continuing
from it gives identical retrieval.
"""

from __future__ import annotations

import math
import os
from typing import ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from memzoo.errors import ConfigError
from memzoo.files import write_file_with
from memzoo.layers._checks import check_heads, check_int
from memzoo.layers._longterm_common import (
    HeadProjection,
    attend,
    batch_counter,
    merge_heads,
    read_counter,
)
from memzoo.layers._views import topk_softmax
from memzoo.layers.base import MemoryLayer, check_input
from memzoo.layers.registry import register
from memzoo.ops.attention_scores import dot_scores, masked_softmax
from memzoo.ops.kv_ring import KVRing, ring_retrieve, ring_write
from memzoo.ops.topk_search import faiss_available

BACKENDS = ("auto", "torch", "faiss")
_QUERY_BLOCK = 256  # queries searched at once: bounds the [n, C + n] score matrix
_STORE_FORMAT = "memzoo.knn_store.v1"
_SCALE_INIT = 20.0  # initial score scale on cosine similarities (reference implementation)


class KNNState(NamedTuple):
    store_k: torch.Tensor  # [B, H, C, Dh] KVRing.keys: write number w sits in slot w mod C
    store_v: torch.Tensor  # [B, H, C, Dh] KVRing.values
    window_k: torch.Tensor  # [B, H, W, Dh] last W tokens, newest last; zeros before the first
    window_v: torch.Tensor  # [B, H, W, Dh]
    seen: torch.Tensor  # [B] int64 tokens seen; KVRing.written = max(0, seen - W)


class KNNReadWeights(NamedTuple):
    local: torch.Tensor  # [B, H, T, T] softmax over the window t-W+1 .. t
    retrieved: torch.Tensor  # [B, H, T, T] softmax over the top-K stored tokens; 0 while none
    gate: torch.Tensor  # [B, H, T, 1] the share of the retrieved read (0 while the store is empty)


@register("knn")
class KNNMemoryAttention(MemoryLayer):
    """Local causal attention + top-k retrieval from a FIFO key/value store, gated per head.

    Args:
        d_model: D.
        num_heads: H, must divide D (default 4).
        top_k: K stored entries retrieved per query (default 8).
        local_window: W most recent tokens read by local attention (default 64).
        capacity: C entries per (batch row, head) in the store (default 4096).
        backend: "torch" (exact), "faiss", or "auto" (FAISS for large CPU stores).
        faiss_min_store: capacity from which "auto" uses FAISS when installed (default 65536).

    ``forward(x [B, T, D], state=None) -> (y [B, T, D], KNNState)``; semantics in the module
    docstring. State bytes are constant: ``4 * (2 * D * (C + W) + 1)`` per sequence.
    """

    kind = "long"
    family = "retrieval"
    state_growth = "O(window)"
    state_differentiable = False  # store writes are detached (see the module docstring)
    description = (
        "kNN memory (Memorizing Transformers): local window + top-k over a FIFO key/value "
        "store of capacity tokens; fixed-size state (O(window): capacity + local_window)"
    )
    gate_units: ClassVar[dict[str, str]] = {
        "gate": "g in (0, 1) per head (a parameter, constant over tokens; 0 while the store is empty), "
        "the share of the read taken from the store",
    }

    def __init__(
        self,
        d_model: int,
        *,
        num_heads: int = 4,
        top_k: int = 8,
        local_window: int = 64,
        capacity: int = 4096,
        backend: str = "auto",
        faiss_min_store: int = 65536,
    ):
        super().__init__(d_model)
        self.head_dim = check_heads("knn", d_model, num_heads)
        self.num_heads = num_heads
        self.top_k = check_int("knn", "top_k", top_k, 1)
        self.local_window = check_int("knn", "local_window", local_window, 1)
        self.capacity = check_int("knn", "capacity", capacity, 1)
        self.faiss_min_store = check_int("knn", "faiss_min_store", faiss_min_store, 1)
        if backend not in BACKENDS:
            raise ConfigError(f"knn: backend must be one of {list(BACKENDS)}, got {backend!r}")
        if backend == "faiss" and not faiss_available():
            raise ConfigError(
                "knn: backend='faiss' needs the optional dependency faiss-cpu "
                "(pip install 'memzoo[faiss]'); or use backend='torch' or 'auto'"
            )
        self.backend = backend
        self.proj = HeadProjection(d_model, num_heads)
        self.out = nn.Linear(d_model, d_model, bias=False)
        self.gate = nn.Parameter(torch.zeros(num_heads))  # sigmoid(0) = an even mix at start
        # Scores are s_h * cos(q, k): the scale a softmax over unit vectors needs to be sharp.
        self.log_scale = nn.Parameter(torch.full((num_heads,), math.log(_SCALE_INIT)))

    # --- state -------------------------------------------------------------------------

    def init_state(self, batch_size: int, device=None, dtype=None) -> KNNState:
        device, dtype = self._param_device_dtype(device, dtype)
        store = (batch_size, self.num_heads, self.capacity, self.head_dim)
        window = (batch_size, self.num_heads, self.local_window, self.head_dim)
        return KNNState(
            store_k=torch.zeros(store, device=device, dtype=dtype),
            store_v=torch.zeros(store, device=device, dtype=dtype),
            window_k=torch.zeros(window, device=device, dtype=dtype),
            window_v=torch.zeros(window, device=device, dtype=dtype),
            seen=batch_counter(0, batch_size, device),
        )

    def state_size(self, seq_len: int) -> int:
        return 4 * (2 * self.d_model * (self.capacity + self.local_window) + 1)

    def search_backend(self, device) -> str:
        """The top-k backend a forward on ``device`` uses."""
        if self.backend != "auto":
            return self.backend
        big = self.capacity >= self.faiss_min_store
        return "faiss" if big and device.type == "cpu" and faiss_available() else "torch"

    # --- forward -------------------------------------------------------------------------

    def _project(self, x: torch.Tensor):
        """``q, k, v`` ``[B, H, T, Dh]``: unit keys, unit queries times the per-head scale."""
        q, k, v = self.proj(x)
        scale = torch.exp(self.log_scale).to(x.dtype).view(1, -1, 1, 1)
        return F.normalize(q, dim=-1) * scale, F.normalize(k, dim=-1), v

    def _mix_gate(self, dtype: torch.dtype) -> torch.Tensor:
        """``sigmoid(gate)`` ``[1, H, 1, 1]``, the retrieved read's share once the store is not empty."""
        return torch.sigmoid(self.gate).to(dtype).view(1, -1, 1, 1)

    def _local(self, q, ctx_k, ctx_v, p0: int) -> torch.Tensor:
        """Causal attention of queries at context rows ``p0 ..`` over their last W rows."""
        n, window = q.shape[2], self.local_window
        lo, hi = max(0, p0 - window + 1), p0 + n
        pos_q = torch.arange(p0, hi, device=q.device).unsqueeze(1)  # [n, 1]
        pos_k = torch.arange(lo, hi, device=q.device).unsqueeze(0)  # [1, hi - lo]
        lag = pos_q - pos_k
        mask = (lag >= 0) & (lag < window)
        # q carries the score scale already (see forward)
        return attend(q, ctx_k[:, :, lo:hi], ctx_v[:, :, lo:hi], mask, scale=1.0)  # [B, H, n, Dh]

    def _sees(self, p0: int, n: int, device) -> torch.Tensor:
        """``[n]`` context rows that have left the window before the queries at rows ``p0 ..``:
        row j leaves (becomes the next write) before the query at row p when ``j <= p - W``."""
        return (torch.arange(p0, p0 + n, device=device) - self.local_window + 1).clamp_min(0)

    def forward(self, x: torch.Tensor, state: KNNState | None = None):
        check_input(x, self.d_model, self.layer_name)
        batch, t_new, _ = x.shape
        if state is None:
            state = self.init_state(batch, x.device, x.dtype)
        window = self.local_window
        seen = read_counter(state.seen)
        in_window = min(seen, window)  # valid rows at the end of the window buffer
        written = seen - in_window  # tokens already in the store (write numbers 0 .. written-1)
        q, k, v = self._project(x)  # [B, H, T, Dh]; the scale leaves the top-k order as it is
        ctx_k = torch.cat((state.window_k[:, :, window - in_window :], k), dim=2)  # [B, H, m, Dh]
        ctx_v = torch.cat((state.window_v[:, :, window - in_window :], v), dim=2)
        # Context rows leave the window in order, as the store's next writes; not differentiable.
        incoming = (ctx_k.detach(), ctx_v.detach())
        ring = KVRing(state.store_k, state.store_v, written)
        backend = self.search_backend(x.device)
        gate = self._mix_gate(x.dtype)  # [1, H, 1, 1]
        outs = []
        for i0 in range(0, t_new, _QUERY_BLOCK):
            qb = q[:, :, i0 : i0 + _QUERY_BLOCK]
            p0 = in_window + i0
            local = self._local(qb, ctx_k, ctx_v, p0)
            sees = self._sees(p0, qb.shape[2], x.device)
            remote, any_found = ring_retrieve(qb, ring, incoming, sees, top_k=self.top_k, backend=backend)
            g = gate * any_found  # an empty store leaves the window as the only read
            outs.append(g * remote + (1 - g) * local)
        y = self.out(merge_heads(torch.cat(outs, dim=2) if outs else q))  # q is empty if T == 0
        n_left = max(0, ctx_k.shape[2] - window)
        ring = ring_write(ring, incoming[0][:, :, :n_left], incoming[1][:, :, :n_left])
        keep_k, keep_v = ctx_k[:, :, n_left:], ctx_v[:, :, n_left:]
        pad = ctx_k.new_zeros(batch, self.num_heads, window - keep_k.shape[2], self.head_dim)
        new_state = KNNState(
            store_k=ring.keys,
            store_v=ring.values,
            window_k=torch.cat((pad, keep_k), dim=2),
            window_v=torch.cat((pad, keep_v), dim=2),
            seen=batch_counter(seen + t_new, batch, x.device),
        )
        return y, new_state

    # --- views (see base.py) -------------------------------------------------------------

    def _gate_per_token(self, t_len: int, dtype, device) -> torch.Tensor:
        """``[1, H, T, 1]`` mix of each token of a fresh sequence: 0 until its store holds one."""
        found = (self._sees(0, t_len, device) > 0).to(dtype).view(1, 1, -1, 1)  # [1, 1, T, 1]
        return self._mix_gate(dtype) * found

    def write_gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"gate": [B, T, H]}``, the mix ``forward(x)`` applies (see ``gate_units``)."""
        check_input(x, self.d_model, self.layer_name)
        batch, t_len, _ = x.shape
        gate = self._gate_per_token(t_len, x.dtype, x.device)[..., 0].transpose(1, 2)  # [1, T, H]
        return {"gate": gate.expand(batch, -1, -1)}

    def read_weights(self, x: torch.Tensor) -> KNNReadWeights:
        """The local and the retrieved read of a fresh sequence ``x [B, T, D]`` over its
        positions, and the gate mixing them (see the module docstring)."""
        check_input(x, self.d_model, self.layer_name)
        t_len = x.shape[1]
        q, k, _ = self._project(x)
        scores = dot_scores(q, k, 1.0)  # [B, H, T, T]; q carries the scale
        pos = torch.arange(t_len, device=x.device)
        lag = pos.unsqueeze(1) - pos.unsqueeze(0)  # [T, T]
        local = masked_softmax(scores, (lag >= 0) & (lag < self.local_window))
        sees = self._sees(0, t_len, x.device).unsqueeze(1)  # [T, 1] tokens stored so far
        stored = (pos.unsqueeze(0) < sees) & (pos.unsqueeze(0) >= sees - self.capacity)
        retrieved = topk_softmax(scores, stored, self.top_k)
        return KNNReadWeights(local, retrieved, self._gate_per_token(t_len, x.dtype, x.device))

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, H, T, T]``: the weight of each position in the whole read of a fresh
        sequence, ``gate * retrieved + (1 - gate) * local``; rows sum to 1, zero above the
        diagonal and on tokens neither in the window nor retrieved."""
        local, retrieved, gate = self.read_weights(x)
        return gate * retrieved + (1 - gate) * local


def save_store(state: KNNState, path: str | os.PathLike) -> None:
    """Write a kNN layer's state (store, window, counter) to a safetensors file (atomically,
    never through a link: ``memzoo.files.write_file_with``)."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().contiguous().cpu() for name, t in state._asdict().items()}
    write_file_with(path, lambda fresh: save_file(tensors, str(fresh), metadata={"format": _STORE_FORMAT}))


def load_store(path: str | os.PathLike, device=None, layer: KNNMemoryAttention | None = None) -> KNNState:
    """Read a state written by :func:`save_store`; pass it to ``layer(x, state)``.

    The tensors are checked against each other (and against ``layer``'s heads, head size,
    capacity and window when given): a file with the right tag and wrong shapes is a
    ``ConfigError`` naming the file and the tensor, not a failure later."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = os.fspath(path)
    try:
        with safe_open(path, framework="pt") as handle:
            meta = handle.metadata() or {}
        if meta.get("format") != _STORE_FORMAT:
            raise ConfigError(f"{path}: not a memzoo kNN store (format {meta.get('format')!r})")
        tensors = load_file(path, device=str(device) if device is not None else "cpu")
    except (SafetensorError, OSError) as err:
        raise ConfigError(f"{path}: not a readable kNN store ({str(err).splitlines()[0]})") from None
    missing = sorted(set(KNNState._fields) - set(tensors))
    if missing:
        raise ConfigError(f"{path}: kNN store lacks tensors {missing}")
    state = KNNState(**{name: tensors[name] for name in KNNState._fields})
    _check_store_shapes(state, path, layer)
    return state


def _check_store_shapes(state: KNNState, path: str, layer: KNNMemoryAttention | None) -> None:
    shapes = {name: tuple(t.shape) for name, t in state._asdict().items()}

    def bad(what: str) -> ConfigError:
        return ConfigError(f"{path}: kNN store tensors do not fit together: {what} (shapes {shapes})")

    for name in ("store_k", "store_v", "window_k", "window_v"):
        t = getattr(state, name)
        if t.dim() != 4 or not t.is_floating_point():
            raise bad(f"{name} must be a 4-d float tensor [B, H, slots, Dh]")
    if state.store_k.shape != state.store_v.shape or state.window_k.shape != state.window_v.shape:
        raise bad("keys and values differ in shape")
    b, h, _, dh = state.store_k.shape
    if (state.window_k.shape[0], state.window_k.shape[1], state.window_k.shape[3]) != (b, h, dh):
        raise bad("store and window differ in batch, heads or head size")
    if state.seen.dim() != 1 or state.seen.shape[0] != b or state.seen.is_floating_point():
        raise bad(f"seen must be an integer tensor [B] with B={b}")
    if bool((state.seen < 0).any()):
        raise bad("seen holds a negative count")
    if layer is not None:
        want = (layer.num_heads, layer.capacity, layer.head_dim, layer.local_window)
        got = (h, state.store_k.shape[2], dh, state.window_k.shape[2])
        if want != got:
            raise bad(f"the layer needs heads, capacity, head size, window = {want}, the file has {got}")
