"""A sequence model: input embedding, a stack of memory blocks, a head.

Shape legend: B batch, T time, D d_model, V vocabulary, F input features, K outputs.

Inputs are token ids ``[B, T]`` (``vocab_size`` set) or real vectors ``[B, T, F]``
(``input_dim`` set). Heads:

- ``lm``: per-token logits ``[B, T, K]``;
- ``classify``: logits from the final position ``[B, K]``;
- ``regress``: real outputs from the final position ``[B, K]``;
- ``multilabel``: per-position logits ``[B, T, K]``, one Bernoulli per output
  (``memzoo.metrics.multilabel``).

The model threads a list of layer states (one per block) and therefore meets the same
contract as a single layer: whole == chunked == token by token.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from memzoo import layers as layer_registry
from memzoo.errors import ConfigError
from memzoo.models.block import MemoryBlock
from memzoo.models.generate import generate as generate_tokens

HEADS = ("lm", "classify", "regress", "ctc", "multilabel")
PER_POSITION_HEADS = ("lm", "ctc", "multilabel")  # logits at every position [B, T, K]


class SequenceModel(nn.Module):
    """A stack of memory blocks; layers may differ per depth (a hybrid).

    Args:
        layers: registered layer names, one per block, e.g. ``["attention", "lstm"]``.
        d_model: width of every block.
        vocab_size: number of input tokens (token-id inputs) — or
        input_dim: number of input features (real-valued inputs); exactly one is set.
        head: one of ``"lm"``, ``"classify"``, ``"regress"``, ``"ctc"`` (per-frame logits
            with the blank as the last output, see ``memzoo.models.ctc``), ``"multilabel"``
            (per-position logits of independent labels).
        num_outputs: size of the head (logits or regression targets); defaults to
            ``vocab_size`` for ``lm``.
        layer_options: keyword options per layer name, e.g. ``{"sliding_window": {"window": 32}}``.
        mlp_ratio: MLP width multiplier in each block; 0 drops the MLP.
        reset_long_term_memory: an ablation: read segment by segment (``SegmentRunner``), the
            long-term layers start afresh at every segment, so their memory carries nothing
            across a segment boundary (default False).

    Initialisation policy (model level, one place): every module keeps its own default init,
    and the memory layers keep their deliberate ones (gate biases, decay parameters, slots);
    the model then scales the output projection of each block's MLP — the residual branch the
    model itself owns — by ``1 / sqrt(2 * num_blocks)``, as GPT-2/nanoGPT and fla scale
    residual outputs, so the residual stream's variance does not grow with depth.
    """

    def __init__(
        self,
        *,
        layers: list[str],
        d_model: int,
        vocab_size: int | None = None,
        input_dim: int | None = None,
        head: str = "lm",
        num_outputs: int | None = None,
        layer_options: dict[str, dict[str, Any]] | None = None,
        mlp_ratio: int = 4,
        reset_long_term_memory: bool = False,
    ):
        super().__init__()
        self.reset_long_term_memory = reset_long_term_memory
        if not layers:
            raise ConfigError("layers must name at least one memory layer")
        if (vocab_size is None) == (input_dim is None):
            raise ConfigError("set exactly one of vocab_size (token inputs) or input_dim (real inputs)")
        if head not in HEADS:
            raise ConfigError(f"head must be one of {', '.join(HEADS)}; got {head!r}")
        num_outputs = num_outputs if num_outputs is not None else vocab_size
        if num_outputs is None or num_outputs <= 0:
            raise ConfigError("num_outputs must be a positive integer for this head")
        layer_options = layer_options or {}
        unused = sorted(set(layer_options) - set(layers))
        if unused:
            raise ConfigError(f"layer_options names layer(s) {unused} that are not in layers {layers}")

        self.layer_names = list(layers)
        self.head_kind = head
        self.embed = nn.Embedding(vocab_size, d_model) if vocab_size else nn.Linear(input_dim, d_model)
        self.blocks = nn.ModuleList(
            MemoryBlock(layer_registry.build(name, d_model, **layer_options.get(name, {})), mlp_ratio)
            for name in layers
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_outputs)
        self._scale_residual_outputs()

    def _scale_residual_outputs(self) -> None:
        """The initialisation policy above: MLP output weights times ``1/sqrt(2 * depth)``."""
        scale = (2 * len(self.blocks)) ** -0.5
        with torch.no_grad():
            for block in self.blocks:
                if block.mlp is not None:
                    block.mlp[-1].weight.mul_(scale)

    def init_state(self, batch_size: int, device=None, dtype=None) -> list[Any]:
        return [block.layer.init_state(batch_size, device, dtype) for block in self.blocks]

    def state_size(self, seq_len: int) -> int:
        """Bytes of memory state one sequence holds after ``seq_len`` tokens (fp32)."""
        return sum(block.layer.state_size(seq_len) for block in self.blocks)

    def boundary_state_size(self, segment_len: int, seq_len: int | None = None) -> int:
        """Bytes carried across the last segment boundary of a ``seq_len``-token sequence read
        in segments of ``segment_len`` (see ``MemoryLayer.boundary_state_size``). With
        ``reset_long_term_memory`` (the ablation) the long-term layers start afresh at every
        segment: they carry nothing."""
        return sum(
            block.layer.boundary_state_size(segment_len, seq_len)
            for block, carried in zip(self.blocks, self.carried_blocks())
            if carried
        )

    def carried_blocks(self) -> list[bool]:
        """Per block, whether its state crosses a segment boundary (``SegmentRunner``): every
        block's, except the long-term layers' with ``reset_long_term_memory`` (the ablation)."""
        return [not (self.reset_long_term_memory and block.layer.kind == "long") for block in self.blocks]

    def hidden(self, x: torch.Tensor, state: list[Any] | None = None) -> tuple[torch.Tensor, list[Any]]:
        """Final normalised hidden states ``[B, T, D]`` and the new per-block states."""
        if state is None:
            state = [None] * len(self.blocks)
        elif len(state) != len(self.blocks):
            raise ConfigError(f"state has {len(state)} entries, the model has {len(self.blocks)} blocks")
        h = self.embed(x)  # [B, T, D]
        new_state = []
        for block, block_state in zip(self.blocks, state):
            h, block_state = block(h, block_state)
            new_state.append(block_state)
        return self.norm(h), new_state

    def forward(self, x: torch.Tensor, state: list[Any] | None = None) -> tuple[torch.Tensor, list[Any]]:
        h, new_state = self.hidden(x, state)
        if self.head_kind in PER_POSITION_HEADS:
            return self.head(h), new_state  # [B, T, K]
        return self.head(h[:, -1]), new_state  # [B, K]

    def generate(
        self,
        prompt: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        greedy: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue ``prompt [B, P]`` by ``max_new_tokens`` tokens; returns ``[B, P + N]`` ids.

        The prompt runs in parallel form, then each new token is fed back in the recurrent
        form with the carried state. Sampling: ``greedy`` arg-max, or softmax of logits /
        ``temperature`` over the ``top_k`` most likely tokens, drawn with ``generator``.
        Needs ``head="lm"`` and token inputs; see :func:`memzoo.models.generate.generate`.
        """
        return generate_tokens(self, prompt, max_new_tokens, temperature, top_k, greedy, generator)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
