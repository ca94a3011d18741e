"""``MemzooForCausalLM``: a memzoo language model as a ``transformers`` causal LM.

Shape legend: B batch, T new tokens of a call, V vocabulary, K lm-head outputs (<= V).

The model wraps one :class:`memzoo.models.SequenceModel` (``head="lm"``) as ``.model``; its
weights are that model's (``model.embed.weight``, ``model.blocks.0...``) and its logits are
that model's logits, unchanged. Importing this module registers it with
``AutoModelForCausalLM`` for ``model_type="memzoo"`` (memzoo does it for you when
``transformers``' Auto model classes are first loaded; see
:mod:`memzoo.integrations.autoregister`).

**The cache is memzoo's state.** ``forward(input_ids, cache=None) -> logits [B, T, K], cache``
where ``cache`` is a :class:`MemzooState`: the list of per-block layer states that
``SequenceModel.forward(x, state)`` threads, plus the number of tokens read. It is what each
memory holds: a growing KV cache for attention, a fixed-size matrix for the fast-weight layers
(deltanet, mLSTM, linear attention), ``(h, c)`` for an LSTM, the weights of a neural memory,
so a recurrent model's cache stays the same size however long it generates.
``GenerationMixin.generate`` reads the prompt in one call (memzoo's parallel form), then
feeds each new token alone with the carried state (the recurrent form): the per-step work is
one state step, never a rerun of the prefix. Because every memzoo layer gives the same
outputs whole, chunked or token by token, greedy ``generate`` equals
``SequenceModel.generate(prompt, n, greedy=True)``.

Supported: greedy search, sampling, beam search (the state is reordered along the batch with
``index_select``), ``labels`` (the usual shifted cross-entropy). Not supported: padding
(``attention_mask`` with zeros: every token a memzoo model reads enters its memory),
``inputs_embeds``, assisted decoding (a memzoo state cannot be cropped back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers.generation import GenerationMixin
from transformers.modeling_outputs import ModelOutput
from transformers.modeling_utils import PreTrainedModel
from transformers.models.auto.modeling_auto import AutoModelForCausalLM

from memzoo.errors import MemzooError
from memzoo.integrations.hf_config import MemzooConfig
from memzoo.layers.base import map_state
from memzoo.models import SequenceModel
from memzoo.models.targets import IGNORE_INDEX


class MemzooState:
    """The cache ``generate`` carries: memzoo's per-block layer states after ``seen`` tokens.

    ``states`` is exactly what :meth:`memzoo.models.SequenceModel.forward` returns and takes
    (batch first); nothing in it is ever modified in place, so one state may be continued
    twice (beam search, scoring several continuations of one context)."""

    is_compileable = False  # generate's compile and crop paths do not apply
    is_croppable = False

    def __init__(self, states: list[Any], seen: int):
        self.states, self.seen = states, seen

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Tokens read so far (what ``transformers`` asks of a cache)."""
        return self.seen

    def index_select(self, index: torch.Tensor) -> MemzooState:
        """The state of batch rows ``index`` (beam search's reordering)."""
        return MemzooState(map_state(lambda t: t.index_select(0, index.to(t.device)), self.states), self.seen)

    def __repr__(self) -> str:
        return f"MemzooState(blocks={len(self.states)}, seen={self.seen})"


@dataclass
class MemzooCausalLMOutput(ModelOutput):
    """``loss`` (with ``labels``), ``logits [B, T, K]``, ``cache`` (a :class:`MemzooState`)."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    cache: MemzooState | None = None


class MemzooForCausalLM(PreTrainedModel, GenerationMixin):
    """A memzoo language model behind the ``transformers`` causal-LM interface."""

    config_class = MemzooConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    _no_split_modules = ["MemoryBlock"]

    def __init__(self, config: MemzooConfig):
        super().__init__(config)
        if not config.layers:
            raise MemzooError("MemzooConfig needs layers (a list of memzoo layer names)")
        self.model = SequenceModel(**config.sequence_model_kwargs())
        self.post_init()

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        return False  # the cache is memzoo's own state (MemzooState), made by forward

    def _init_weights(self, module) -> None:
        """Nothing: memzoo's modules initialise themselves (``SequenceModel``'s policy), and
        ``from_pretrained`` loads every weight from the file."""

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.model.embed

    def set_input_embeddings(self, value: torch.nn.Module) -> None:
        self.model.embed = value

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.model.head

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        cache: MemzooState | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        return_dict: bool | None = None,
        inputs_embeds: torch.Tensor | None = None,
        past_key_values: MemzooState | None = None,
        **kwargs: Any,
    ) -> MemzooCausalLMOutput | tuple:
        """``input_ids [B, T]`` read after ``cache`` (None: from the start) -> logits ``[B, T, K]``
        and, unless ``use_cache=False``, the cache after them. ``labels [B, T]`` (-100 ignored)
        give ``loss``: cross-entropy of position t's logits against ``labels[:, t + 1]``."""
        if inputs_embeds is not None or input_ids is None:
            raise MemzooError("MemzooForCausalLM reads token ids (input_ids); inputs_embeds is not supported")
        if attention_mask is not None and not bool((attention_mask == 1).all()):
            raise MemzooError(
                "attention_mask has zeros (padding): a memzoo model reads every token into its memory "
                "state, so pad nothing; run sequences of one length together, or one at a time"
            )
        cache = _memzoo_state(cache if cache is not None else past_key_values)
        logits, states = self.model(input_ids, None if cache is None else cache.states)  # [B, T, K]
        use_cache = self.config.use_cache and not self.training if use_cache is None else use_cache
        seen = (0 if cache is None else cache.seen) + input_ids.shape[1]
        new_cache = MemzooState(states, seen) if use_cache else None
        loss = None
        if labels is not None:
            shifted = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
            loss = F.cross_entropy(shifted, labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)
        output = MemzooCausalLMOutput(loss=loss, logits=logits, cache=new_cache)
        return output if return_dict is not False else output.to_tuple()

    def _reorder_cache(self, cache: MemzooState, beam_idx: torch.Tensor) -> MemzooState:
        """Beam search: the state of the beams kept, in their new order."""
        return cache.index_select(beam_idx)


def _memzoo_state(cache: Any) -> MemzooState | None:
    """``cache`` as a ``MemzooState``; an empty ``transformers`` cache (one a caller made
    before knowing the model) counts as none."""
    if cache is None or isinstance(cache, MemzooState):
        return cache
    length = getattr(cache, "get_seq_length", None)
    if callable(length) and length() == 0:
        return None
    raise MemzooError(
        f"MemzooForCausalLM carries its own state (MemzooState); got a {type(cache).__name__} holding tokens"
    )


AutoModelForCausalLM.register(MemzooConfig, MemzooForCausalLM, exist_ok=True)
