"""Run configuration: pydantic models validated once at the boundary.

A run is ``RunConfig{task, model, train}``. Unknown keys are errors (``extra="forbid"``);
task parameters are validated by the task's own model. Configs load from YAML/JSON and take
dotted ``key=value`` overrides::

    task.seq_len=128 model.d_model=64 model.layers=[attention,lstm] train.lr=1e-3
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
    model_validator,
)

from memzoo import layers as layer_registry
from memzoo import tasks
from memzoo.errors import ConfigError
from memzoo.parsing import load_yaml_text, preview, validation_problems
from memzoo.trackers import TrackerName, check_tracker_names
from memzoo.train.curriculum import CurriculumConfig, check_curriculum
from memzoo.train.multitask_spec import MultiTask


class TaskSpec(BaseModel):
    """A task name plus its parameters (validated by the registered task)."""

    model_config = ConfigDict(extra="allow")

    name: str = "mqar"

    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    _built: Any = PrivateAttr(default=None)

    def build(self):
        """The task this spec names, or the spec of a run kind that is not a task
        (``multitask``: :class:`memzoo.train.multitask_spec.MultiTask`): built once, when the
        spec is validated, and the same object on every call (the size check, the recipe)."""
        if self._built is None:
            self._built = self._build()
        return self._built

    def _build(self):
        if self.name == MultiTask.name:
            try:
                return MultiTask(**self.params())
            except ValidationError as err:
                raise ConfigError(f"task 'multitask': {validation_problems(err, root='config')}") from None
        return tasks.build(self.name, **self.params())

    @model_validator(mode="after")
    def _task_accepts_params(self) -> TaskSpec:
        self.build()  # raises ConfigError (a ValueError) naming the bad parameter
        return self


class RMTConfig(BaseModel):
    """``model.rmt``: the stack as a Recurrent Memory Transformer
    (:class:`memzoo.models.recurrent_memory.RecurrentMemoryModel`, Bulatov et al. 2022):
    ``num_memory`` memory tokens pass through the *whole* stack, segment by segment, and are
    the only thing that crosses a segment boundary (``num_memory: 0`` is its ablation, the
    segments then do not communicate). Not the ``memory_tokens`` layer, whose memory tokens
    live inside one layer.

    ``segment_len`` unset: the segment length the run reads in (``train.segment_len``, else
    the task's own, e.g. ``cross_segment_recall``'s ``segment_len``). Set, it must equal that
    length when the run has one (checked when the model is built); a run without segments
    then trains on whole sequences, which the model still reads in its own segments."""

    model_config = ConfigDict(extra="forbid")

    num_memory: int = Field(8, ge=0, description="memory tokens M carried across segments (0: ablation)")
    segment_len: int | None = Field(
        None, gt=0, description="tokens per segment (default: train.segment_len or the task's)"
    )


class ModelConfig(BaseModel):
    """Architecture: memory layers per depth, width, and per-layer options; ``rmt`` set, the
    stack is wrapped as a Recurrent Memory Transformer (:class:`RMTConfig`)."""

    model_config = ConfigDict(extra="forbid")

    layers: LayerNames = Field(default_factory=lambda: ["attention", "attention"], min_length=1)
    d_model: int = Field(64, gt=0)
    mlp_ratio: int = Field(4, ge=0)
    layer_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    reset_long_term_memory: bool = Field(
        False, description="ablation: long-term layers start afresh at every segment"
    )
    rmt: RMTConfig | None = Field(
        None, description="memory tokens through the whole stack (RMT); None: a plain stack"
    )

    @model_validator(mode="after")
    def _known_options(self) -> ModelConfig:
        check_layer_options(self.layer_options, self.layers)
        if self.rmt is not None and self.reset_long_term_memory:
            raise ValueError(
                "model.reset_long_term_memory=true cannot be combined with model.rmt: the "
                "ablation of RMT's memory is model.rmt.num_memory=0"
            )
        return self

    @model_serializer(mode="wrap")
    def _omit_unset_rmt(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A plain stack dumps as before ``rmt`` existed: stored configs and their hashes stay.
        data = handler(self)
        if self.rmt is None:
            data.pop("rmt", None)
        return data


def known_layers(names: list[str]) -> list[str]:
    """``names`` if each is a registered layer or an importable ``"module:Class"`` path."""
    for name in names:
        layer_registry.get(name)
    return names


#: a list of layer names, checked against the registry when validated
LayerNames = Annotated[list[str], AfterValidator(known_layers)]


def check_layer_options(layer_options: dict[str, dict[str, Any]], used: list[str]) -> None:
    """Raise ``ValueError`` (pydantic reports it with the field) if ``layer_options`` names a
    layer that is not ``used`` or an option the layer does not accept."""
    for name, options in layer_options.items():
        if name not in used:
            raise ValueError(f"layer_options names {name!r}, which is not among the layers {used}")
        accepted = layer_registry.accepted_kwargs(name)
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValueError(
                f"layer {name!r} has no option(s) {unknown}; accepted: {', '.join(sorted(accepted))}"
            )


class BaseTrainConfig(BaseModel):
    """Optimisation, budget and evaluation settings that every kind of run shares.

    The budget is work: ``max_steps`` optimiser steps when set, else ``epochs`` passes over
    ``num_train`` examples. ``max_seconds`` is only a safety cap; a run it stops is stored
    ``truncated`` and kept out of result tables. Validation (``num_validation`` examples)
    selects the checkpoint and stops early; the test set (``num_test``) is scored once.
    ``trackers`` (any of tensorboard, mlflow, wandb; the extra ``memzoo[trackers]``) also log
    the run as it trains, offline, under ``tracker_dir`` (see :mod:`memzoo.trackers`).
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    epochs: int = Field(32, gt=0)
    max_steps: int | None = Field(None, gt=0, description="optimiser steps; overrides epochs")
    batch_size: int = Field(32, gt=0)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_fraction: float = Field(0.05, ge=0, lt=1)
    grad_clip: float = Field(1.0, gt=0)
    num_train: int = Field(10_000, gt=0)
    num_validation: int = Field(1_000, gt=0, description="examples that select the checkpoint")
    num_test: int = Field(1_000, gt=0, description="examples scored once, on the selected checkpoint")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    max_seconds: float | None = Field(
        None, gt=0, description="safety cap on wall time; a run it stops is stored 'truncated'"
    )
    checkpoint: bool = True
    out_dir: str = "results/runs"
    trackers: Annotated[list[TrackerName], AfterValidator(check_tracker_names)] = Field(
        default_factory=list, description="experiment trackers the run also logs to (memzoo.trackers)"
    )
    tracker_dir: str = Field(
        "results/trackers", description="where trackers write: tensorboard/, mlflow/, wandb/ (offline)"
    )


class TrainConfig(BaseTrainConfig):
    """Settings of a sequence-model run (single task, multitask, continual)."""

    target_accuracy: float = Field(0.99, gt=0, le=1, description="stop once validation accuracy reaches it")
    segment_len: int | None = Field(
        None, gt=0, description="read inputs in segments of this many tokens (SegmentRunner)"
    )
    tbptt_segments: int = Field(
        1, gt=0, description="segments per truncated-backpropagation window (with segment_len)"
    )
    curriculum: CurriculumConfig | None = Field(
        None, description="grow a task parameter stage by stage (memzoo.train.curriculum)"
    )
    compile: bool = Field(
        False, description="torch.compile the training forward and loss (whole sequences, one process)"
    )


class RunConfig(BaseModel):
    """Everything that defines one training run."""

    model_config = ConfigDict(extra="forbid")

    task: TaskSpec = Field(default_factory=TaskSpec)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _tbptt_needs_segments(self) -> RunConfig:
        # Segments come from train.segment_len or, failing that, the task's own segment_len.
        tc = self.train
        if tc.tbptt_segments != 1 and tc.segment_len is None:
            if (
                self.task.name not in ("continual", "multitask")  # their tasks carry segments
                and self.task.build().preferred_segment_len() is None
            ):
                raise ValueError(
                    f"train.tbptt_segments={tc.tbptt_segments} needs train.segment_len "
                    "(truncated backpropagation works on segments)"
                )
        return self

    @model_validator(mode="after")
    def _reset_has_something_to_reset(self) -> RunConfig:
        # The ablation resets long-term layers at each segment boundary; without segments, or
        # without a long-term layer, it would silently change nothing and be reported as a
        # "memory reset" result.
        if not self.model.reset_long_term_memory:
            return self
        registered = [n for n in self.model.layers if n in layer_registry.names()]
        if len(registered) == len(self.model.layers) and not any(
            layer_registry.info(n).kind == "long" for n in registered
        ):
            raise ValueError(
                "model.reset_long_term_memory=true resets long-term layers, and none of "
                f"model.layers {self.model.layers} is one (long-term: {', '.join(long_term_layers())})"
            )
        if self.train.segment_len is None and self.task.name not in ("continual", "multitask"):
            if self.task.build().preferred_segment_len() is None:
                raise ValueError(
                    "model.reset_long_term_memory=true resets memory at segment boundaries: set "
                    f"train.segment_len (task {self.task.name!r} has no segments of its own)"
                )
        return self

    @model_validator(mode="after")
    def _curriculum_fits_task(self) -> RunConfig:
        if self.train.curriculum is not None:
            check_curriculum(self.train.curriculum, self.task.name, self.task.params(), self.train.epochs)
        return self


def long_term_layers() -> list[str]:
    return [n for n in layer_registry.names() if layer_registry.info(n).kind == "long"]


def validate_as(cls: type[BaseModel], data: Any) -> Any:
    """``data`` validated as ``cls`` (returned as is if it already is one); any problem
    becomes one ``ConfigError`` naming the field."""
    if isinstance(data, cls):
        return data
    try:
        return cls.model_validate(data)
    except ValidationError as err:
        raise ConfigError(validation_problems(err, root="config")) from None


def validate_config(data: dict[str, Any] | RunConfig) -> RunConfig:
    """A validated ``RunConfig``; any problem becomes one ``ConfigError`` naming the field."""
    return validate_as(RunConfig, data)


def parse_value(text: str, where: str = "override value") -> Any:
    """Parse an override value: int, float (``1e-3`` too), bool, list ``[a,b]``, or string.

    Text that is not valid YAML stays a string. YAML too long, nested too deep or using an
    alias is a ``ConfigError`` naming ``where`` (see ``memzoo.parsing``)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    try:
        return load_yaml_text(text, where)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted ``key=value`` overrides applied."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {preview(item)} must look like section.key=value")
        node = data
        *path, leaf = key.split(".")
        for part in path:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {preview(item)}: {preview(part)} is not a section")
            node = child
        node[leaf] = parse_value(raw, f"override {preview(key)}")
    return data


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON config file into a dict (validated later).

    Raises ``ConfigError`` (one line naming the file) for a missing file, a folder, an
    empty file, bytes that are not UTF-8, malformed YAML/JSON (with its line and column), text
    too long, nested too deep or using a YAML alias (``memzoo.parsing``), or a top level that
    is not a mapping."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {str(path)!r} is a directory; give a YAML/JSON file")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
        data = load_yaml_text(text, f"config file {str(path)!r}")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {str(path)!r} is not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise ConfigError(f"config file {str(path)!r} cannot be read: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML/JSON: {_yaml_problem(err)}") from None
    if data is None:
        raise ConfigError(
            f"config file {str(path)!r} is empty; give at least one section (task, model, train)"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must contain a mapping at the top level")
    return data


def _yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (line, column from 1)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or getattr(err, "context", None) or str(err)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return " ".join(f"{problem}{where}".split())


def build_config(base: dict[str, Any] | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Defaults <- ``base`` <- ``overrides``, validated."""
    return validate_config(apply_overrides(base or {}, overrides or []))
