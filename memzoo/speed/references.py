"""Reference implementations that ``memzoo speed`` measures memzoo's layers against.

Each reference does the same job with the plainest well-kept code, so a ratio
``layer tokens/s ÷ reference tokens/s`` says what memzoo's layer costs on top:

- ``attention`` vs bare ``scaled_dot_product_attention`` with the same projections;
- ``lstm`` / ``gru`` / ``rnn`` vs the bare ``torch.nn`` module;
- a fast-weight layer vs the same layer running its op's naive token-by-token recurrence
  (layers that take ``algorithm="naive"``);
- ``neural_memory`` vs titans-pytorch's ``NeuralMemory`` at the same shape, when that package
  is installed (:func:`titans_reference`);
- the one-token decode step of ``attention`` (dot scores) vs :class:`PreallocatedKVReference`:
  the same projections and RoPE, keys and values written in place into a buffer allocated
  once for the whole decode, SDPA over its filled part.
"""

from __future__ import annotations

import importlib.util

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from memzoo import layers as layer_registry
from memzoo.layers._attention_common import apply_rope, rope_tables


class SDPAReference(nn.Module):
    """qkv projection -> causal SDPA -> output projection; ``[B, T, D] -> [B, T, D]``."""

    def __init__(self, d_model: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, state=None):
        q, k, v = rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.num_heads)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # [B, H, T, Dh]
        return self.out(rearrange(y, "b h t d -> b t (h d)")), None


class DecodeBuffer:
    """What :class:`PreallocatedKVReference` decodes into: ``k, v [B, H, C, Dh]`` allocated
    once (C = capacity), ``length`` positions filled, and the RoPE rotations of all C
    positions (``[1, 1, C, Dh/2]`` complex, None without RoPE). Mutated in place by ``step``."""

    __slots__ = ("k", "length", "rotation", "v")

    def __init__(self, k: torch.Tensor, v: torch.Tensor, rotation: torch.Tensor | None, length: int = 0):
        self.k, self.v, self.rotation, self.length = k, v, rotation, length

    @property
    def capacity(self) -> int:
        return self.k.shape[2]


class PreallocatedKVReference(nn.Module):
    """The textbook decode step of causal attention with a preallocated KV buffer.

    The same work as one decode step of memzoo's ``attention`` (dot scores): fused qkv
    projection, RoPE on q and k at the token's position (when ``rope``), k and v written in
    place at that position of ``[B, H, C, Dh]`` buffers, ``scaled_dot_product_attention`` of
    the one query over ``buffer[:, :, :pos + 1]`` (no mask: the query sees every filled
    position), output projection. Copy an ``Attention``'s ``qkv`` / ``out`` weights in and
    both give the same outputs.
    """

    def __init__(self, d_model: int, num_heads: int = 4, rope: bool = True):
        super().__init__()
        self.num_heads, self.head_dim, self.rope = num_heads, d_model // num_heads, rope
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def allocate(self, batch_size: int, capacity: int, device=None, dtype=torch.float32) -> DecodeBuffer:
        """An empty buffer for ``capacity`` positions (RoPE tables computed once, here)."""
        shape = (batch_size, self.num_heads, capacity, self.head_dim)
        rotation = None
        if self.rope:
            rotation = rope_tables(torch.arange(capacity, device=device), self.head_dim, dtype)
        return DecodeBuffer(
            torch.zeros(shape, device=device, dtype=dtype),
            torch.zeros(shape, device=device, dtype=dtype),
            rotation,
        )

    def step(self, x: torch.Tensor, buffer: DecodeBuffer) -> torch.Tensor:
        """Decode one token ``x [B, 1, D]`` at position ``buffer.length`` -> ``[B, 1, D]``;
        writes its k, v into ``buffer`` and advances ``buffer.length``."""
        pos = buffer.length
        if pos >= buffer.capacity:
            raise ValueError(f"decode buffer full: capacity {buffer.capacity}")
        q, k, v = rearrange(self.qkv(x), "b t (three h d) -> three b h t d", three=3, h=self.num_heads)
        if buffer.rotation is not None:
            rotation = buffer.rotation[:, :, pos : pos + 1]
            q, k = apply_rope(q, rotation), apply_rope(k, rotation)
        buffer.k[:, :, pos : pos + 1] = k
        buffer.v[:, :, pos : pos + 1] = v
        buffer.length = pos + 1
        y = F.scaled_dot_product_attention(q, buffer.k[:, :, : pos + 1], buffer.v[:, :, : pos + 1])
        return self.out(rearrange(y, "b h t d -> b t (h d)"))

    def forward(self, x: torch.Tensor, buffer: DecodeBuffer) -> torch.Tensor:
        return self.step(x, buffer)


class TorchRecurrentReference(nn.Module):
    """A bare ``torch.nn.LSTM/GRU/RNN`` (batch first, hidden = d_model)."""

    def __init__(self, cls: type[nn.Module], d_model: int):
        super().__init__()
        self.rnn = cls(d_model, d_model, batch_first=True)

    def forward(self, x: torch.Tensor, state=None):
        return self.rnn(x)


_TORCH_RECURRENT = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}


def titans_reference(d_model: int, options: dict) -> nn.Module | None:
    """titans-pytorch's ``NeuralMemory`` at the shape of memzoo's ``neural_memory`` with
    ``options`` (heads, chunk size, a 2-layer MLP of the same expansion), or None when that
    package is not installed (it is not a memzoo dependency: ``pip install titans-pytorch``).

    Same shapes, not the same work: titans-pytorch takes every chunk's gradient at the
    weights the sequence starts from and combines the steps by an associative scan, while
    memzoo takes each chunk's gradient at the weights the previous chunk left (the paper's
    sequential form), and adds a short convolution on q, k, v."""
    if importlib.util.find_spec("titans_pytorch") is None:
        return None
    from titans_pytorch import NeuralMemory as TitansNeuralMemory

    settings = {**layer_registry.accepted_kwargs("neural_memory"), **options}
    heads = settings["num_heads"]
    return TitansNeuralMemory(
        dim=d_model,
        chunk_size=settings["chunk_size"],
        heads=heads,
        dim_head=d_model // heads,
        default_model_kwargs={"depth": 2, "expansion_factor": float(settings["hidden_mult"])},
    )


def reference_for(name: str, d_model: int, options: dict) -> tuple[str, nn.Module] | None:
    """``(label, module)`` to compare layer ``name`` with, or None if it has no reference."""
    if name == "neural_memory":
        module = titans_reference(d_model, options)
        return None if module is None else ("titans-pytorch NeuralMemory", module)
    if name == "attention":
        return "sdpa", SDPAReference(d_model, options.get("num_heads", 4))
    if name in _TORCH_RECURRENT:
        cls = _TORCH_RECURRENT[name]
        return f"torch.nn.{cls.__name__}", TorchRecurrentReference(cls, d_model)
    if "algorithm" in layer_registry.accepted_kwargs(name):
        return "naive recurrence", layer_registry.build(name, d_model, **{**options, "algorithm": "naive"})
    return None


def decode_reference_for(
    name: str, d_model: int, options: dict
) -> tuple[str, PreallocatedKVReference] | None:
    """``(label, module)`` to compare layer ``name``'s one-token decode step with, or None.

    Only for a layer whose state is a growing KV cache and whose step is attention alone:
    ``attention`` with dot scores (``attention_lstm`` adds an LSTM, ``sliding_window`` and
    ``persistent`` keep a bounded window, cosine/additive scores do other math)."""
    if name != "attention" or options.get("score", "dot") != "dot":
        return None
    module = PreallocatedKVReference(d_model, options.get("num_heads", 4), options.get("rope", True))
    return "preallocated KV buffer", module
