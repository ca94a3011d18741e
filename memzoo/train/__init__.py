"""Training: configs, the one run lifecycle and its recipes, checkpoints, loading.

``fit(config)`` trains what a config describes (the run kinds: :mod:`memzoo.train.run_kinds`);
``load(run_dir)`` gives the trained model back.
"""

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
from memzoo.train.evaluation import evaluate
from memzoo.train.lifecycle import RunResult
from memzoo.train.loading import load
from memzoo.train.recipes.single_task import build_model
from memzoo.train.run_kinds import fit

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
    "fit",
    "load",
    "load_config_file",
    "validate_config",
]
