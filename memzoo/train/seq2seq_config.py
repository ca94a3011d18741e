"""Configuration of a translation run: ``TranslationConfig{task, model, train}`` (pydantic).

Unknown keys are errors (``extra="forbid"``); task parameters are validated by the
``translate`` task itself. Built like a ``RunConfig``: defaults <- a YAML/JSON mapping <-
dotted ``key=value`` overrides::

    task.seq_len=16 model.encoder_layers=[attention] model.score=additive train.epochs=20
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from memzoo.models.seq2seq import Seq2Seq
from memzoo.train.config import (
    BaseTrainConfig,
    LayerNames,
    TaskSpec,
    apply_overrides,
    check_layer_options,
    validate_as,
)


def _translate_spec() -> TaskSpec:
    return TaskSpec(name="translate")


class Seq2SeqModelConfig(BaseModel):
    """Architecture of a :class:`memzoo.models.Seq2Seq`."""

    model_config = ConfigDict(extra="forbid")

    encoder_layers: LayerNames = Field(default_factory=lambda: ["lstm"], min_length=1)
    decoder_layers: LayerNames = Field(default_factory=lambda: ["lstm"], min_length=1)
    d_model: int = Field(64, gt=0)
    num_heads: int = Field(4, gt=0, description="heads of the cross-attention")
    score: Literal["dot", "additive"] = "dot"
    bidirectional: bool = True
    mlp_ratio: int = Field(2, ge=0)
    layer_options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_options(self) -> Seq2SeqModelConfig:
        used = list(dict.fromkeys(self.encoder_layers + self.decoder_layers))
        check_layer_options(self.layer_options, used)
        if self.d_model % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide d_model={self.d_model}")
        return self


class TranslationTrainConfig(BaseTrainConfig):
    """The shared train settings (other defaults, suited to the toy grammar) plus decoding."""

    epochs: int = Field(30, gt=0)
    batch_size: int = Field(64, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    num_train: int = Field(4000, gt=0)
    num_validation: int = Field(300, gt=0, description="pairs that select the checkpoint")
    num_test: int = Field(300, gt=0, description="pairs scored once, on the selected checkpoint")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    target_chrf: float = Field(99.0, gt=0, le=100, description="stop once validation chrF reaches it")
    beam_size: int = Field(1, ge=1, description="decoding at evaluation: 1 greedy, >1 beam search")
    length_penalty: float = Field(1.0, ge=0, description="beam ranking: sum log p / length**this")


class TranslationConfig(BaseModel):
    """Everything that defines one translation run."""

    model_config = ConfigDict(extra="forbid")

    task: TaskSpec = Field(default_factory=_translate_spec)
    model: Seq2SeqModelConfig = Field(default_factory=Seq2SeqModelConfig)
    train: TranslationTrainConfig = Field(default_factory=TranslationTrainConfig)

    @field_validator("task", mode="before")
    @classmethod
    def _default_task_name(cls, value: Any) -> Any:
        if isinstance(value, dict) and "name" not in value:
            value = {"name": "translate", **value}  # `task.seq_len=...` alone means translate
        return value

    @field_validator("task")
    @classmethod
    def _translate_only(cls, value: TaskSpec) -> TaskSpec:
        if value.name != "translate":
            raise ValueError(f"a translation run needs task 'translate', got {value.name!r}")
        return value


def validate_translation_config(data: dict[str, Any] | TranslationConfig) -> TranslationConfig:
    """A validated config; any problem becomes one ``ConfigError`` naming the field."""
    return validate_as(TranslationConfig, data)


def build_translation_config(
    base: dict[str, Any] | None = None, overrides: list[str] | None = None
) -> TranslationConfig:
    """Defaults <- ``base`` <- dotted ``key=value`` ``overrides``, validated."""
    return validate_translation_config(apply_overrides(base or {}, overrides or []))


def build_seq2seq(model: Seq2SeqModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> Seq2Seq:
    """The ``Seq2Seq`` a model section describes, for these two vocabulary sizes (training
    and loading build it alike)."""
    return Seq2Seq(
        src_vocab_size=src_vocab_size,
        tgt_vocab_size=tgt_vocab_size,
        d_model=model.d_model,
        encoder_layers=model.encoder_layers,
        decoder_layers=model.decoder_layers,
        layer_options=model.layer_options,
        num_heads=model.num_heads,
        score=model.score,
        bidirectional=model.bidirectional,
        mlp_ratio=model.mlp_ratio,
    )
