"""Curriculum training: easier versions of the task first, growing towards the target.

``train.curriculum`` names one numeric parameter of the task (``seq_len`` by default) and
the values it takes in the stages *before* the target::

    train:
      epochs: 8
      curriculum: {param: seq_len, values: [16, 32], epochs_per_stage: 2}
    task: {name: mqar, seq_len: 64, ...}

gives three stages: epochs 1-2 train on ``seq_len=16``, epochs 3-4 on ``seq_len=32`` and
epochs 5-8 on the config's own task (the *target*, ``seq_len=64``). Rules:

- ``values`` grow strictly and never pass the target's value. If the last one equals the
  target's value it *is* the target stage (not a second copy of it); otherwise the target
  stage follows them. Every stage but the last lasts ``epochs_per_stage`` epochs; the target
  stage gets the remaining ``train.epochs`` (at least one).
- every stage's task must be valid (``mqar`` needs ``seq_len >= 4 * num_kv_pairs``): the
  task's own error is reported under ``train.curriculum.values``.
- a stage's training set is generated afresh from the stage's task, with its own seed
  (``train.seed + (stage + 1) * STAGE_SEED_STRIDE``); the target stage trains on the same
  data as a run without a curriculum. Evaluation always uses the target task's held-out set,
  so the curve shows how far each stage brings the target.
- each curve point carries ``curriculum_stage`` (0-based) and ``curriculum_value``.
- the data of an epoch depends only on the epoch and the config, so ``--resume`` continues a
  curriculum run exactly where it stopped. Only single-task runs take a curriculum.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from memzoo import tasks
from memzoo.train.kinds import NOT_SINGLE_TASK

STAGE_SEED_STRIDE = 10_007  # stage seeds never meet the held-out seed (seed + 1_000_003)


class CurriculumConfig(BaseModel):
    """``train.curriculum``: which task parameter grows, through which values, how fast."""

    model_config = ConfigDict(extra="forbid")

    param: str = Field("seq_len", description="the task parameter the stages change")
    values: list[int | float] = Field(
        min_length=1, description="its value in each stage before the target, growing"
    )
    epochs_per_stage: int = Field(1, gt=0, description="epochs of every stage but the target's")

    @field_validator("values")
    @classmethod
    def _growing(cls, values: list[int | float]) -> list[int | float]:
        if any(isinstance(v, bool) for v in values):
            raise ValueError(f"values must be numbers, got {values}")
        if any(b <= a for a, b in zip(values, values[1:])):
            raise ValueError(f"values must grow strictly towards the target, got {values}")
        return values


def _stage_task(name: str, params: dict[str, Any], param: str, value):
    return tasks.build(name, **{**params, param: value})


def check_curriculum(
    curriculum: CurriculumConfig, task_name: str, params: dict[str, Any], epochs: int
) -> None:
    """Raise ``ValueError`` naming the field if ``curriculum`` cannot run on the task
    ``task_name(**params)`` within ``epochs`` epochs (see the module docstring)."""
    if task_name in NOT_SINGLE_TASK:
        raise ValueError(f"train.curriculum works on single-task runs; task {task_name!r} is not one")
    fields = tasks.get(task_name).model_fields
    param = curriculum.param
    if param not in fields or param == "name":
        raise ValueError(
            f"train.curriculum.param={param!r} is not a parameter of task "
            f"{task_name!r}; accepted: {', '.join(fields)}"
        )
    target = getattr(tasks.build(task_name, **params), param)
    if isinstance(target, bool) or not isinstance(target, (int, float)):
        raise ValueError(
            f"train.curriculum.param={param!r} must be a numeric parameter of task "
            f"{task_name!r}; its value is {target!r}"
        )
    values = curriculum.values
    if values[-1] > target:
        raise ValueError(
            f"train.curriculum.values={values} must not pass the target "
            f"{param}={target} (the task's own value, trained last)"
        )
    for value in values:
        try:
            _stage_task(task_name, params, param, value)
        except ValueError as err:  # the task's ConfigError, one line naming its parameters
            raise ValueError(f"train.curriculum.values: {param}={value} is not valid: {err}") from None
    stages = len(plan_values(values, target))
    left = epochs - (stages - 1) * curriculum.epochs_per_stage
    if left < 1:
        raise ValueError(
            f"train.curriculum.epochs_per_stage={curriculum.epochs_per_stage} x "
            f"{stages - 1} stage(s) before the target leave no epoch of "
            f"train.epochs={epochs} for the target stage"
        )


def plan_values(values: list[int | float], target: int | float) -> list[int | float]:
    """The value of every stage: ``values``, then ``target`` unless it is already last."""
    return list(values) if values[-1] == target else [*values, target]


class Curriculum:
    """The stages of one run and the training data of each epoch.

    Args:
        cfg: the validated ``RunConfig`` (its ``train.curriculum`` is set).
        target_task: ``cfg.task`` built.
        target_data: the training set of the target task (what a run without a curriculum
            trains on); the last stage uses it as is.
    """

    def __init__(self, cfg, target_task, target_data):
        curriculum, tc = cfg.train.curriculum, cfg.train
        self.param = curriculum.param
        self.values = plan_values(curriculum.values, getattr(target_task, self.param))
        self.epochs_per_stage = curriculum.epochs_per_stage
        self._spec = (cfg.task.name, cfg.task.params())
        self._num_train, self._seed = tc.num_train, tc.seed
        self._target_data = target_data
        self._cached: tuple[int, Any] | None = None  # (stage, data): one stage held at a time

    def stage_at(self, epoch: int) -> int:
        """The stage (0-based) that trains epoch ``epoch`` (1-based)."""
        return min((epoch - 1) // self.epochs_per_stage, len(self.values) - 1)

    def data_for(self, epoch: int):
        """The training ``TaskData`` of epoch ``epoch``: the stage's task, its own seed."""
        stage = self.stage_at(epoch)
        if stage == len(self.values) - 1:
            return self._target_data
        if self._cached is None or self._cached[0] != stage:
            task = _stage_task(*self._spec, self.param, self.values[stage])
            seed = self._seed + (stage + 1) * STAGE_SEED_STRIDE
            self._cached = (stage, task.split(self._num_train, 0, seed=seed)[0])
        return self._cached[1]

    def point(self, epoch: int) -> dict[str, int | float]:
        """What a curve point records about the curriculum at ``epoch``."""
        stage = self.stage_at(epoch)
        return {"curriculum_stage": stage, "curriculum_value": self.values[stage]}
