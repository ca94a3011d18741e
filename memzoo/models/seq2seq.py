"""An encoder-decoder whose encoder outputs are the memory the decoder attends to.

Shape legend: B batch, S source positions, T target positions, D d_model,
V_src / V_tgt vocabularies.

- **Encoder**: source embedding and a stack of memory blocks (any registered layers). The
  encoder reads the whole source before the decoder starts, so it need not be causal: with
  ``bidirectional=True`` a second stack reads each source backwards (its real tokens
  reversed, padding left at the end) and the two readings are merged per position.
- **Memory**: the encoder outputs ``[B, S, D]`` with the source padding mask.
- **Decoder**: target embedding and blocks of ``causal memory layer -> cross-attention over
  the memory -> MLP`` (residual, pre-norm), then a projection to ``V_tgt`` logits. The
  decoder layers carry their state, so decoding one token at a time (``decode`` with a state)
  gives the same logits as the teacher-forced pass over the whole target.

Token conventions (those of :mod:`memzoo.data.text_tokenizers`): ``pad_id`` pads a source on
the right; the decoder input is ``<bos>`` followed by the target; the target ends with
``<eos>``; ``-100`` marks unscored target positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from memzoo import layers as layer_registry
from memzoo.errors import ConfigError
from memzoo.layers.base import map_state
from memzoo.models.block import MemoryBlock
from memzoo.models.cross_attention import CrossAttention, MemoryKV
from memzoo.models.seq2seq_decode import beam_search, greedy_decode
from memzoo.models.targets import IGNORE_INDEX


class EncoderMemory(NamedTuple):
    """What the decoder reads: encoder outputs, the source mask and per-block keys/values."""

    outputs: torch.Tensor  # [B, S, D]
    mask: torch.Tensor  # [B, S] True at real source tokens
    kv: list[MemoryKV]  # one per decoder block

    def repeat(self, times: int) -> EncoderMemory:
        """Each example repeated ``times`` times in a row (for beam search): batch ``B * times``."""
        rep = lambda t: t.repeat_interleave(times, dim=0)  # noqa: E731
        return EncoderMemory(rep(self.outputs), rep(self.mask), [map_state(rep, kv) for kv in self.kv])


class DecoderBlock(nn.Module):
    """``x -> x + layer(norm x) -> x + cross(norm x, memory) -> x + mlp(norm x)``."""

    def __init__(self, layer, *, num_heads: int, score: str, mlp_ratio: int):
        super().__init__()
        d_model = layer.d_model
        self.memory_block = MemoryBlock(layer, mlp_ratio=0)
        self.norm_cross = nn.LayerNorm(d_model)
        self.cross = CrossAttention(d_model, num_heads=num_heads, score=score)
        self.mlp = None
        if mlp_ratio > 0:
            self.norm_mlp = nn.LayerNorm(d_model)
            self.mlp = nn.Sequential(
                nn.Linear(d_model, mlp_ratio * d_model), nn.GELU(), nn.Linear(mlp_ratio * d_model, d_model)
            )

    def forward(self, x: torch.Tensor, memory: MemoryKV, state: Any = None):
        x, state = self.memory_block(x, state)  # [B, T, D]
        x = x + self.cross(self.norm_cross(x), memory)
        if self.mlp is not None:
            x = x + self.mlp(self.norm_mlp(x))
        return x, state


def _stack(names: Sequence[str], d_model: int, options: dict, mlp_ratio: int) -> nn.ModuleList:
    return nn.ModuleList(
        MemoryBlock(layer_registry.build(n, d_model, **options.get(n, {})), mlp_ratio) for n in names
    )


def reverse_tokens(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first ``lengths[b]`` positions of each row of ``x [B, S, ...]``; the rest
    (padding) stays in place. Applying it twice gives ``x`` back."""
    positions = torch.arange(x.shape[1], device=x.device)[None, :]  # [1, S]
    index = torch.where(positions < lengths[:, None], lengths[:, None] - 1 - positions, positions)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class Seq2Seq(nn.Module):
    """Encoder-decoder translation model built from registered memory layers.

    Args:
        src_vocab_size, tgt_vocab_size: vocabularies of the two languages.
        d_model: width of every block.
        encoder_layers / decoder_layers: registered layer names, one per block.
        layer_options: options per layer name, e.g. ``{"attention": {"num_heads": 2}}``.
        num_heads: heads of the cross-attention.
        score: cross-attention score, ``"dot"`` or ``"additive"`` (Bahdanau).
        bidirectional: also read the source backwards in the encoder (default True).
        mlp_ratio: MLP width multiplier in every block (0 drops the MLPs).
        pad_id, bos_id, eos_id: special token ids.
    """

    def __init__(
        self,
        *,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 64,
        encoder_layers: Sequence[str] = ("lstm",),
        decoder_layers: Sequence[str] = ("lstm",),
        layer_options: dict[str, dict[str, Any]] | None = None,
        num_heads: int = 4,
        score: str = "dot",
        bidirectional: bool = True,
        mlp_ratio: int = 2,
        pad_id: int = 0,
        bos_id: int = 2,
        eos_id: int = 3,
    ):
        super().__init__()
        if not encoder_layers or not decoder_layers:
            raise ConfigError("encoder_layers and decoder_layers must each name at least one layer")
        options = layer_options or {}
        unused = sorted(set(options) - set(encoder_layers) - set(decoder_layers))
        if unused:
            raise ConfigError(f"layer_options names layer(s) {unused} used by neither encoder nor decoder")
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.encoder_layers, self.decoder_layers = list(encoder_layers), list(decoder_layers)
        self.src_embed = nn.Embedding(src_vocab_size, d_model)
        self.encoder = _stack(encoder_layers, d_model, options, mlp_ratio)
        self.backward_encoder = _stack(encoder_layers, d_model, options, mlp_ratio) if bidirectional else None
        self.merge = nn.Linear(2 * d_model, d_model) if bidirectional else None
        self.encoder_norm = nn.LayerNorm(d_model)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model)
        self.decoder = nn.ModuleList(
            DecoderBlock(
                layer_registry.build(n, d_model, **options.get(n, {})),
                num_heads=num_heads,
                score=score,
                mlp_ratio=mlp_ratio,
            )
            for n in decoder_layers
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, tgt_vocab_size)

    # ---- encoder -----------------------------------------------------------------------
    def encode(self, src: torch.Tensor) -> EncoderMemory:
        """The memory of source ids ``src [B, S]`` (right-padded with ``pad_id``)."""
        mask = src != self.pad_id  # [B, S]
        h = self.src_embed(src)  # [B, S, D]
        forward = h
        for block in self.encoder:
            forward, _ = block(forward)
        if self.backward_encoder is not None:
            lengths = mask.sum(1)
            backward = reverse_tokens(h, lengths)
            for block in self.backward_encoder:
                backward, _ = block(backward)
            forward = self.merge(torch.cat((forward, reverse_tokens(backward, lengths)), dim=-1))
        outputs = self.encoder_norm(forward)
        return EncoderMemory(outputs, mask, [blk.cross.project_memory(outputs, mask) for blk in self.decoder])

    # ---- decoder -----------------------------------------------------------------------
    def decode(
        self, tgt_in: torch.Tensor, memory: EncoderMemory, state: list[Any] | None = None
    ) -> tuple[torch.Tensor, list[Any]]:
        """Logits ``[B, T, V_tgt]`` for decoder inputs ``tgt_in [B, T]`` and the new state
        (one entry per decoder block; pass it back to continue the same sequences)."""
        state = state if state is not None else [None] * len(self.decoder)
        h = self.tgt_embed(tgt_in)  # [B, T, D]
        new_state = []
        for block, kv, block_state in zip(self.decoder, memory.kv, state):
            h, block_state = block(h, kv, block_state)
            new_state.append(block_state)
        return self.head(self.decoder_norm(h)), new_state

    def decoder_inputs(self, targets: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: ``<bos>`` then the targets shifted right (``-100`` -> ``pad``)."""
        shifted = targets[:, :-1].masked_fill(targets[:, :-1] == IGNORE_INDEX, self.pad_id)
        bos = torch.full_like(targets[:, :1], self.bos_id)
        return torch.cat((bos, shifted), dim=1)

    def forward(self, src: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[B, T, V_tgt]``: position t predicts ``targets[:, t]``."""
        logits, _ = self.decode(self.decoder_inputs(targets), self.encode(src))
        return logits

    def loss(self, src: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
        """Mean cross-entropy over scored target positions (``targets != -100``)."""
        logits = self(src, targets)
        return F.cross_entropy(
            logits.flatten(0, 1).float(),
            targets.flatten(),
            ignore_index=IGNORE_INDEX,
            label_smoothing=label_smoothing,
        )

    # ---- sizes -------------------------------------------------------------------------
    def memory_bytes(self, src_len: int, tgt_len: int) -> int:
        """Bytes per sequence (fp32): encoder outputs the decoder reads plus decoder state."""
        d_model = self.src_embed.embedding_dim
        return 4 * src_len * d_model + sum(b.memory_block.layer.state_size(tgt_len) for b in self.decoder)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def translate_ids(
        self,
        src: torch.Tensor,
        *,
        beam_size: int = 1,
        max_len: int | None = None,
        length_penalty: float = 1.0,
        batch_size: int = 256,
    ) -> list[list[int]]:
        """Target ids (without specials) for each row of ``src [N, S]``, decoded in batches on
        the model's device: greedy for ``beam_size == 1``, else beam search (the one decode
        path; see :mod:`memzoo.models.seq2seq_decode`)."""
        device = next(self.parameters()).device
        out: list[list[int]] = []
        for start in range(0, len(src), batch_size):
            batch = src[start : start + batch_size].to(device)
            if beam_size == 1:
                out += greedy_decode(self, batch, max_len=max_len)
            else:
                out += beam_search(
                    self, batch, beam_size=beam_size, max_len=max_len, length_penalty=length_penalty
                )
        return out
