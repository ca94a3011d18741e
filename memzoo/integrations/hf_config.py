"""``MemzooConfig``: a memzoo language model's architecture as a ``transformers`` config.

Importing this module registers ``model_type="memzoo"`` with ``AutoConfig`` (memzoo does it
for you when ``transformers``' ``AutoConfig`` is first loaded; see
:mod:`memzoo.integrations.autoregister`). The fields are the ``model`` section of a memzoo
run config plus the sizes a checkpoint records:

- ``layers``: registered memzoo layer names, one per block (a hybrid mixes them);
- ``d_model``, ``mlp_ratio``, ``layer_options``, ``reset_long_term_memory``: as in
  :class:`memzoo.models.SequenceModel`;
- ``vocab_size``: V input tokens; ``num_outputs``: K lm-head outputs (default V, K <= V);
- ``train_length``: tokens per training sequence of the run (None when unknown): lm-eval's
  default window (:mod:`memzoo.integrations.lm_eval_model`).

Only layers registered in memzoo are accepted: a layer named by import path
(``"package.module:Class"``) would make loading the folder run code from elsewhere, which
memzoo's Hugging Face export never asks for (no ``trust_remote_code``). Such a config is
refused with a :class:`~memzoo.errors.MemzooError`.
"""

from __future__ import annotations

from typing import Any

from transformers.configuration_utils import PreTrainedConfig
from transformers.models.auto.configuration_auto import AutoConfig

from memzoo import layers as layer_registry
from memzoo.errors import MemzooError
from memzoo.train.config import ModelConfig, validate_as

MODEL_TYPE = "memzoo"


def check_registered_layers(names: Any, where: str = "config") -> list[str]:
    """``names`` if it is a non-empty list of layer names registered in this memzoo; a
    ``MemzooError`` otherwise (an import path ``"module:Class"`` is refused: no remote code)."""
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise MemzooError(f"{where}: layers must be a non-empty list of memzoo layer names, got {names!r}")
    for name in names:
        if ":" in name:
            raise MemzooError(
                f"{where}: layer {name[:100]!r} is named by import path (code outside memzoo); a Hugging "
                "Face export holds only layers registered in memzoo, so that loading it runs no remote "
                "code. Register the layer in memzoo, or keep using the memzoo checkpoint (memzoo.load)"
            )
        if name not in layer_registry.names():
            raise MemzooError(
                f"{where}: unknown memzoo layer {name[:100]!r} (a newer memzoo?); this memzoo has: "
                + ", ".join(layer_registry.names())
            )
    return names


class MemzooConfig(PreTrainedConfig):
    """The architecture of a memzoo language model (see the module docstring for the fields).

    >>> MemzooConfig(layers=["deltanet", "attention"], d_model=32, vocab_size=256).num_outputs
    256
    """

    model_type = MODEL_TYPE

    layers: list[str] | None = None
    d_model: int = 64
    vocab_size: int = 256
    num_outputs: int | None = None
    mlp_ratio: int = 4
    layer_options: dict[str, dict[str, Any]] | None = None
    reset_long_term_memory: bool = False
    train_length: int | None = None
    use_cache: bool = True
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        if self.num_outputs is None:
            self.num_outputs = self.vocab_size
        if self.layers is not None:  # transformers also builds a default config to diff against
            self._check()
        super().__post_init__(**kwargs)

    def _check(self) -> None:
        check_registered_layers(self.layers)
        section = validate_as(ModelConfig, self.model_section())  # layer options, sizes
        self.layer_options = section.layer_options
        for name in ("vocab_size", "num_outputs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MemzooError(f"config: {name} must be a positive integer, got {value!r}")
        if self.num_outputs > self.vocab_size:
            raise MemzooError(
                f"config: the lm head has {self.num_outputs} outputs but the vocabulary only "
                f"{self.vocab_size} tokens; generation feeds outputs back as inputs"
            )

    def model_section(self) -> dict[str, Any]:
        """The ``model`` section of a memzoo run config that this config describes."""
        return {
            "layers": list(self.layers or []),
            "d_model": self.d_model,
            "mlp_ratio": self.mlp_ratio,
            "layer_options": dict(self.layer_options or {}),
            "reset_long_term_memory": self.reset_long_term_memory,
        }

    def sequence_model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`memzoo.models.SequenceModel` for this config."""
        return {
            **self.model_section(),
            "vocab_size": self.vocab_size,
            "head": "lm",
            "num_outputs": self.num_outputs,
        }


AutoConfig.register(MODEL_TYPE, MemzooConfig, exist_ok=True)
