"""Model-level Recurrent Memory Transformer: memory tokens that pass through the whole stack.

Shape legend: B batch, T new tokens, L ``segment_len``, M ``num_memory``, D d_model,
n tokens of one piece (a part of a segment).

Bulatov et al. 2022, "Recurrent Memory Transformer" (RMT), decoder-only form, as the paper
builds it: the input is cut into segments of L tokens counted from its start, and each
segment is read by the *whole* block stack as the sequence

    [read memory (M); segment (L); write memory (M)]

with learned absolute positions ``0 .. 2M+L-1`` added to every token of it (the backbone's
position embeddings in the paper). The read and the write tokens are both the current
memory, told apart by their positions; the blocks are causal, so a segment token sees the
read tokens and its past inside the segment, and the write tokens, coming last, see the
read tokens, the whole segment and the write tokens before them, at every depth. The final
(normalised) hidden states of the write tokens are the next segment's memory. The initial
memory is learned.

Every block's own state (a KV cache, a window, a recurrent state) is **reset at every
segment boundary**: the memory is the only thing that crosses segments, as in RMT without
its optional XL cache. The layers' states therefore hold at most 2M + L tokens, whatever
the input length, and a full-``attention`` layer inside the stack costs O(segment), not
O(T).

Contract. As for a single layer: a token's output depends on the memory written by the
previous completed segments and on its causal past inside its own segment; the state holds
the memory, the block states of the current segment (its read tokens already processed)
and the position inside it, and the memory is rewritten exactly when a segment's L-th
token arrives. So the whole input, any chunking of it, and token by token give the same
outputs and state, and :class:`memzoo.models.SegmentRunner` runs it unchanged (truncated
backpropagation cuts the carried memory every ``tbptt_segments``).

Where this simplifies the paper: the read tokens' outputs are discarded and write tokens see
the write tokens before them (the causal decoder's mask; the paper's encoder variant lets
them see each other); there is no XL cache.

Training. A run config builds it with ``model.rmt: {num_memory, segment_len}``
(:class:`memzoo.train.config.RMTConfig`; the segment length defaults to the run's), and
memzoo's trainer trains it. The paper's curriculum over the number of segments (train on one
segment, then more once learned) is ``train.curriculum`` over a task parameter that sets how
many segments lie between what is written and where it is read, e.g. cross-segment recall's
``max_distance`` (the ``longterm`` suite's RMT rows: distances up to 48, 112, then 256 —
one, two, then up to five segments of 64); as in the paper's reference implementation the
stages draw the number of segments from a range (its ``vary_n_segments``) and gradients flow
through every segment of a training sequence (``train.tbptt_segments`` at least the number
of segments: full backpropagation through time). Each stage must be learned before the next
starts: with 8 read tokens before the pairs, recall inside one segment was learned only after
~1,000 steps (500 without them), and a run whose first stage ended sooner stayed at the level
of knowing an example's values but not their keys.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from memzoo.errors import ConfigError
from memzoo.layers.base import last_boundary
from memzoo.models.sequence_model import SequenceModel


class RecurrentMemoryState(NamedTuple):
    memory: torch.Tensor  # [B, M, D] memory written by the last completed segment
    blocks: list[Any]  # per-block states of the current segment, read tokens included
    pos: torch.Tensor  # [B] int64 tokens of the current segment seen so far (0 <= pos < L)


def _positive(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"RecurrentMemoryModel: {name} must be an integer >= {minimum}, got {value!r}")
    return value


class RecurrentMemoryModel(SequenceModel):
    """A :class:`SequenceModel` whose stack reads ``[read memory; segment; write memory]``.

    Args (beyond those of :class:`SequenceModel`):
        segment_len: L, tokens per segment, counted from the start of the input (default 64).
        num_memory: M memory tokens (default 8; 0 = segments do not communicate at all, the
            ablation of the memory).

    ``hidden(x [B, T] or [B, T, F], state=None) -> (h [B, T, D], RecurrentMemoryState)``;
    ``forward`` adds the head as in :class:`SequenceModel`. ``state_size(seq_len)`` is the
    bytes of the state after ``seq_len`` tokens: bounded by the segment (if every layer's
    state is bounded by the tokens it has seen), flat in ``seq_len``.
    """

    def __init__(self, *, segment_len: int = 64, num_memory: int = 8, **model_kwargs):
        if model_kwargs.get("reset_long_term_memory"):
            raise ConfigError(
                "RecurrentMemoryModel: reset_long_term_memory is the ablation of a plain stack; "
                "RMT's is num_memory=0 (its blocks already restart at every segment)"
            )
        super().__init__(**model_kwargs)
        d_model = self.norm.normalized_shape[0]
        self.segment_len = _positive("segment_len", segment_len)
        self.num_memory = _positive("num_memory", num_memory, 0)
        # Token embeddings and the final norm's output are unit-scale per feature; the
        # memory (a final-norm output) starts there too. Positions start small, as in
        # GPT-2's learned table, and are learned with everything else.
        self.init_memory = nn.Parameter(torch.randn(num_memory, d_model))
        self.positions = nn.Parameter(torch.randn(2 * num_memory + segment_len, d_model) * 0.02)

    # --- state -------------------------------------------------------------------------

    def _fresh_segment(self, memory: torch.Tensor):
        """Block states after the read tokens of a new segment (``memory`` ``[B, M, D]``)."""
        blocks = [
            block.layer.init_state(memory.shape[0], memory.device, memory.dtype) for block in self.blocks
        ]
        if self.num_memory:
            read = memory + self.positions[: self.num_memory].to(memory.dtype)  # [B, M, D]
            _, blocks = self._run_blocks(read, blocks)  # read tokens' outputs are discarded
        return blocks

    def init_state(self, batch_size: int, device=None, dtype=None) -> RecurrentMemoryState:
        ref = self.init_memory
        device = device if device is not None else ref.device
        dtype = dtype if dtype is not None else ref.dtype
        memory = self.init_memory.to(device=device, dtype=dtype).unsqueeze(0).expand(batch_size, -1, -1)
        pos = torch.zeros(batch_size, dtype=torch.long, device=device)
        return RecurrentMemoryState(memory, self._fresh_segment(memory), pos)

    def state_size(self, seq_len: int) -> int:
        """Bytes one sequence's state holds after ``seq_len`` tokens (fp32): the memory,
        the position counter and every block's state after its ``M + seq_len % L`` tokens."""
        in_segment = self.num_memory + seq_len % self.segment_len
        layers = sum(block.layer.state_size(in_segment) for block in self.blocks)
        return 4 * (self.num_memory * self.norm.normalized_shape[0] + 1) + layers

    def boundary_state_size(self, segment_len: int, seq_len: int | None = None) -> int:
        """Bytes one sequence carries across a segment boundary, read in segments of
        ``segment_len`` (as :meth:`SequenceModel.boundary_state_size`): the memory, 4·M·D.
        At a boundary of the model's own segments the position counter is 0 and the block
        states hold only the read tokens, a function of the memory; read in segments that
        cut the model's, the unfinished part of a segment is carried too (all of
        :meth:`state_size`), as the ``memory_tokens`` layer counts it."""
        if segment_len % self.segment_len:
            return self.state_size(last_boundary(segment_len, seq_len))
        return 4 * self.num_memory * self.norm.normalized_shape[0]

    # --- forward -------------------------------------------------------------------------

    def _run_blocks(self, h: torch.Tensor, states: list[Any]):
        new_states = []
        for block, state in zip(self.blocks, states):
            h, state = block(h, state)
            new_states.append(state)
        return h, new_states

    def hidden(self, x: torch.Tensor, state: RecurrentMemoryState | None = None):
        """Final normalised hidden states ``[B, T, D]`` and the new state."""
        emb = self.embed(x)  # [B, T, D]
        batch, t_new, _ = emb.shape
        if state is None:
            state = self.init_state(batch, emb.device, emb.dtype)
        elif not isinstance(state, RecurrentMemoryState):
            raise ConfigError("RecurrentMemoryModel: state must be the RecurrentMemoryState it returned")
        seg_len, m = self.segment_len, self.num_memory
        memory, blocks = state.memory, state.blocks
        pos = int(state.pos[0].item()) if state.pos.numel() else 0  # rows advance together
        outs, start = [], 0
        while start < t_new:
            n = min(seg_len - pos, t_new - start)  # a piece never crosses a segment boundary
            piece = emb[:, start : start + n] + self.positions[m + pos : m + pos + n].to(emb.dtype)
            h, blocks = self._run_blocks(piece, blocks)  # [B, n, D]
            outs.append(h)
            pos, start = pos + n, start + n
            if pos == seg_len:  # the segment is complete: write the memory, start the next
                if m:
                    write = memory + self.positions[m + seg_len :].to(memory.dtype)  # [B, M, D]
                    h_write, _ = self._run_blocks(write, blocks)
                    memory = self.norm(h_write)
                blocks, pos = self._fresh_segment(memory), 0
        h = torch.cat(outs, dim=1) if outs else emb
        new_state = RecurrentMemoryState(
            memory, blocks, torch.full((batch,), pos, dtype=torch.long, device=emb.device)
        )
        return self.norm(h), new_state
