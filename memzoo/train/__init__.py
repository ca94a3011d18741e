"""Training: configs, the loop, metrics, checkpoints."""

from memzoo.train.config import (
    ModelConfig,
    RunConfig,
    TaskSpec,
    TrainConfig,
    apply_overrides,
    build_config,
    load_config_file,
    validate_config,
)
from memzoo.train.trainer import RunResult, build_model, evaluate, train

__all__ = [
    "ModelConfig",
    "RunConfig",
    "RunResult",
    "TaskSpec",
    "TrainConfig",
    "apply_overrides",
    "build_config",
    "build_model",
    "evaluate",
    "load_config_file",
    "train",
    "validate_config",
]

from memzoo.train.loading import load  # noqa: E402

__all__ += ["load"]
