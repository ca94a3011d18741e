"""Recurrent Memory Transformer: memory tokens carried from segment to segment.

Shape legend: B batch, H heads, T new tokens, L segment_len, M num_memory, D d_model,
Dh = D / H, n tokens of one piece (a part of a segment).

Bulatov et al. 2022, "Recurrent Memory Transformer" (RMT), decoder-only form. The sequence is
cut into segments of L tokens counted from its start. Each segment is processed as the
sequence ``[read memory (M); segment (L); write memory (M)]`` with learned absolute
positions ``0 .. 2M+L-1`` (the backbone's position embeddings in the paper): the read and
the write tokens are both the current memory, told apart by their positions. A segment
token attends to the read tokens and to its causal past inside the segment; the write
tokens come after the segment, so they attend to everything: the read tokens, the whole
segment and each other. What is written therefore depends on the segment's content (a write
token's attention picks segment tokens by their keys), and the write tokens' outputs (added
to the memory and layer-normalised: the residual stream of the paper's write positions)
become the memory of the next segment. The initial memory is a learned parameter. With
``xl_cache=True`` every query also attends to the keys/values of the previous segment's
tokens (Transformer-XL; RMT's paper compares against it).

Where this differs from the paper, and why:

- **One layer, not the whole stack.** The paper feeds the memory tokens through every
  layer and takes the *last* layer's write outputs as the next memory; here the layer is
  a memory layer inside a memzoo block stack (e.g. ``[sliding_window, memory_tokens]``), so
  the memory is this layer's own: its write queries are a function of the memory and their
  position (the paper's first layer), the content enters through the keys the write
  tokens attend to (and through the layers below, which have already mixed the segment).
  The read tokens only serve as keys/values (their outputs are discarded in RMT, and one
  layer has no next layer to hand them to). The write tokens skip the block's MLP.
- **Causality inside the unfinished segment.** A token's output depends only on the memory
  written by the previous *completed* segments and on its causal past inside its own
  segment, exactly as in RMT's decoder; the memory is rewritten when a segment's L-th token
  arrives.

**Whole == chunked == token by token.** The state carries the current memory, the
keys/values of the not-yet-finished segment and the position inside it; positions are
counted inside the segment, and the memory is rewritten exactly when a segment's L-th token
arrives, whatever the chunking. So chunk boundaries never change the result.

Backpropagation runs through the memory from segment to segment (and through the XL
keys/values); :class:`memzoo.models.SegmentRunner` truncates it every ``tbptt_segments``.

State growth: the state is the memory (M x D) plus a key/value buffer of at most L tokens
(2L with ``xl_cache``): bounded by the segment length, constant in T ("O(window)").
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from memzoo.errors import ConfigError
from memzoo.layers._checks import check_heads, check_int
from memzoo.layers._longterm_common import (
    HeadProjection,
    attend,
    batch_counter,
    merge_heads,
    pad_to_length,
    prefix_causal_mask,
    read_counter,
)
from memzoo.layers.base import MemoryLayer, check_input, last_boundary
from memzoo.layers.registry import register


class RMTState(NamedTuple):
    memory: torch.Tensor  # [B, M, D] memory written by the last completed segment
    seg_k: torch.Tensor  # [B, H, L, Dh] keys of the current segment (first `pos` rows; zeros after)
    seg_v: torch.Tensor  # [B, H, L, Dh] values of the current segment
    prev_k: torch.Tensor  # [B, H, L, Dh] previous segment's keys (xl_cache) or [B, H, 0, Dh]
    prev_v: torch.Tensor  # [B, H, L, Dh] previous segment's values, likewise
    pos: torch.Tensor  # [B] int64 tokens of the current segment seen so far (0 <= pos < L)
    done: torch.Tensor  # [B] int64 segments completed so far


@register("memory_tokens")
class RecurrentMemoryTransformer(MemoryLayer):
    """Segment-level recurrence through M memory tokens (RMT), optional XL cache.

    Args:
        d_model: D.
        num_heads: H, must divide D (default 4).
        segment_len: L tokens per segment, counted from the start of the sequence (default 64).
        num_memory: M memory vectors (default 8; 0 = segments do not communicate, unless
            ``xl_cache``).
        xl_cache: also attend to the previous segment's keys/values (default False).

    ``forward(x [B, T, D], state=None) -> (y [B, T, D], RMTState)``; see the module docstring
    for the exact semantics. Gradients flow through the memory and the cached keys/values
    from segment to segment (backpropagation through time; use ``detach_state`` to truncate).
    """

    kind = "long"
    family = "memory-tokens"
    state_growth = "O(window)"
    description = (
        "Recurrent Memory Transformer: M read tokens before and M write tokens after each "
        "segment, attending with it; state = memory + KV of the unfinished segment (O(window))"
    )

    def __init__(
        self,
        d_model: int,
        *,
        num_heads: int = 4,
        segment_len: int = 64,
        num_memory: int = 8,
        xl_cache: bool = False,
    ):
        super().__init__(d_model)
        self.head_dim = check_heads("memory_tokens", d_model, num_heads)
        self.num_heads = num_heads
        self.segment_len = check_int("memory_tokens", "segment_len", segment_len, 1)
        self.num_memory = check_int("memory_tokens", "num_memory", num_memory, 0)
        if not isinstance(xl_cache, bool):
            raise ConfigError(f"memory_tokens: xl_cache must be true or false, got {xl_cache!r}")
        self.xl_cache = xl_cache
        self.proj = HeadProjection(d_model, num_heads)
        self.out = nn.Linear(d_model, d_model, bias=False)
        # The memory is layer-normalised after every write, so it starts at the same scale.
        self.init_memory = nn.Parameter(torch.randn(num_memory, d_model))
        # Absolute positions of [read (M); segment (L); write (M)]. The layer's input is
        # layer-normalised (unit scale per feature); positions start an order smaller, as
        # the write and read tokens are the same memory and must first be told apart.
        self.positions = nn.Parameter(torch.randn(2 * num_memory + segment_len, d_model) * 0.1)
        self.memory_norm = nn.LayerNorm(d_model)

    # --- state -------------------------------------------------------------------------

    def init_state(self, batch_size: int, device=None, dtype=None) -> RMTState:
        device, dtype = self._param_device_dtype(device, dtype)
        buf = (batch_size, self.num_heads, self.segment_len, self.head_dim)
        prev = (batch_size, self.num_heads, self.segment_len if self.xl_cache else 0, self.head_dim)
        memory = self.init_memory.to(device=device, dtype=dtype)
        return RMTState(
            memory=memory.unsqueeze(0).expand(batch_size, -1, -1),
            seg_k=torch.zeros(buf, device=device, dtype=dtype),
            seg_v=torch.zeros(buf, device=device, dtype=dtype),
            prev_k=torch.zeros(prev, device=device, dtype=dtype),
            prev_v=torch.zeros(prev, device=device, dtype=dtype),
            pos=batch_counter(0, batch_size, device),
            done=batch_counter(0, batch_size, device),
        )

    def state_size(self, seq_len: int) -> int:
        buffers = 2 * self.d_model * self.segment_len * (2 if self.xl_cache else 1)
        return 4 * (self.num_memory * self.d_model + buffers + 2)

    def boundary_state_size(self, segment_len: int, seq_len: int | None = None) -> int:
        """The memory tokens (and with ``xl_cache`` the previous segment's keys/values): the
        segment buffer is empty at a boundary of this layer's own segments. Read in segments
        that cut this layer's, the unfinished part of a segment is carried too."""
        if segment_len % self.segment_len:
            return self.state_size(last_boundary(segment_len, seq_len))
        xl = 2 * self.d_model * self.segment_len if self.xl_cache else 0
        return 4 * (self.num_memory * self.d_model + xl + 2)

    # --- forward -------------------------------------------------------------------------

    def _read_kv(self, memory: torch.Tensor):
        """Keys/values ``[B, H, M, Dh]`` of the read tokens (memory at positions 0..M-1)."""
        _, k, v = self.proj(memory + self.positions[: self.num_memory].to(memory.dtype))
        return k, v

    def _write(self, memory, prefix_k, prefix_v, seg_k, seg_v) -> torch.Tensor:
        """New memory ``[B, M, D]``: the write tokens (memory at positions M+L..2M+L-1)
        attend to the read prefix, the whole segment and each other."""
        wq, wk, wv = self.proj(memory + self.positions[-self.num_memory :].to(memory.dtype))
        keys = torch.cat((prefix_k, seg_k, wk), dim=2)  # [B, H, prefix + L + M, Dh]
        values = torch.cat((prefix_v, seg_v, wv), dim=2)
        update = self.out(merge_heads(attend(wq, keys, values)))  # [B, M, D]
        return self.memory_norm(memory + update)

    def forward(self, x: torch.Tensor, state: RMTState | None = None):
        check_input(x, self.d_model, self.layer_name)
        batch, t_new, _ = x.shape
        if state is None:
            state = self.init_state(batch, x.device, x.dtype)
        seg_len, m = self.segment_len, self.num_memory
        pos, done = read_counter(state.pos), read_counter(state.done)
        memory, prev_k, prev_v = state.memory, state.prev_k, state.prev_v
        seg_k, seg_v = state.seg_k[:, :, :pos], state.seg_v[:, :, :pos]  # [B, H, pos, Dh]
        # Each new token's position inside its segment, after the M read tokens.
        in_segment = (pos + torch.arange(t_new, device=x.device)) % seg_len  # [T]
        q, k, v = self.proj(x + self.positions[m + in_segment].to(x.dtype))  # [B, H, T, Dh]
        mem_k, mem_v = self._read_kv(memory)
        outs, start = [], 0
        while start < t_new:
            n = min(seg_len - pos, t_new - start)  # a piece never crosses a segment boundary
            piece = slice(start, start + n)
            # Always-visible prefix: [previous segment (XL, once there is one); read
            # memory; this segment so far].
            xl = (prev_k,) if self.xl_cache and done > 0 else ()
            xl_v = (prev_v,) if xl else ()
            prefix_k = torch.cat((*xl, mem_k, seg_k), dim=2)
            prefix_v = torch.cat((*xl_v, mem_v, seg_v), dim=2)
            mask = prefix_causal_mask(n, prefix_k.shape[2], device=x.device)
            keys = torch.cat((prefix_k, k[:, :, piece]), dim=2)
            values = torch.cat((prefix_v, v[:, :, piece]), dim=2)
            outs.append(attend(q[:, :, piece], keys, values, mask))  # [B, H, n, Dh]
            seg_k = torch.cat((seg_k, k[:, :, piece]), dim=2)
            seg_v = torch.cat((seg_v, v[:, :, piece]), dim=2)
            pos, start = pos + n, start + n
            if pos == seg_len:  # the segment is complete: write memory, roll the XL cache
                if m:
                    read_k = torch.cat((*xl, mem_k), dim=2)
                    read_v = torch.cat((*xl_v, mem_v), dim=2)
                    memory = self._write(memory, read_k, read_v, seg_k, seg_v)
                    mem_k, mem_v = self._read_kv(memory)
                if self.xl_cache:
                    prev_k, prev_v = seg_k, seg_v
                seg_k, seg_v = seg_k[:, :, :0], seg_v[:, :, :0]
                pos, done = 0, done + 1
        y = self.out(merge_heads(torch.cat(outs, dim=2) if outs else q))  # q is empty if T == 0
        new_state = RMTState(
            memory=memory,
            seg_k=pad_to_length(seg_k, seg_len),
            seg_v=pad_to_length(seg_v, seg_len),
            prev_k=prev_k,
            prev_v=prev_v,
            pos=batch_counter(pos, batch, x.device),
            done=batch_counter(done, batch, x.device),
        )
        return y, new_state
