"""Continual learning: train on task A, then on task B, and measure what A kept.

Not a loop of its own: the run is single-task runs (:class:`PhaseRecipe` through the one
lifecycle) on the same weights, composed. The model — sized for both tasks' vocabularies (B in
token ids of its own by default, :mod:`memzoo.tasks.continual`) — trains on A, goes on training
on B (with the continual task's ``remedy``: :mod:`memzoo.train.recipes.continual_remedies`),
then is scored on A again and on B. Each phase is the standard protocol of a fresh run: its own
AdamW and warm-up + cosine schedule (built by the lifecycle), its own early stop at
``train.target_accuracy`` and checkpoint selection on its own validation set.

With R[i][j] the test accuracy on task j after phase i (the accuracy matrix of Lopez-Paz &
Ranzato 2017, "Gradient Episodic Memory for Continual Learning", NeurIPS, §4), the record holds::

    accuracy_a_before = R[1][A]          accuracy_a_after = R[2][A]          accuracy_b = R[2][B]
    accuracy          = (R[2][A] + R[2][B]) / 2     ACC of GEM: mean final accuracy over the tasks
    forgetting        = R[1][A] - R[2][A]           Chaudhry et al. 2018, "Riemannian Walk for
                                                    Incremental Learning", ECCV, eq. 4, for two
                                                    tasks; GEM's BWT = -forgetting
    retention         = R[2][A] / R[1][A]           the fraction of A's accuracy kept (1: none lost)
    plasticity        = R[2][B]                     how well B is learned from A's weights: the
                                                    "learning accuracy" a_{k,k} (Riemer et al.
                                                    2019, "Learning to Learn without Forgetting by
                                                    Maximizing Transfer and Minimizing Interference")
    continual_score   = (retention + plasticity) / 2
    accuracy_a_after_phase = {"1": R[1][A], "2": R[2][A]}   (a plot)

With the task's ``b_alone``, a copy of the starting model also trains on B alone:
``accuracy_b_alone`` (the plasticity reference) and ``intransigence = accuracy_b_alone -
accuracy_b`` (Chaudhry et al. 2018, eq. 5: what having learned A costs B). With B in its own ids,
``accuracy_a_after_own_outputs`` scores A with the prediction restricted to A's own output ids,
and ``retention_own_outputs`` divides it by the same score before B: what the shared weights
kept of A apart from B's answers outscoring A's in the shared output layer.

**Undefined, not zero.** Retention, forgetting and the score say how much of A survived learning
B: they are reported only when A was learned before B and B after A (each test accuracy at least
the task's ``learned_accuracy``). Otherwise they are ``None`` and ``continual_undefined`` says why.

A config whose task is ``continual`` (``task.task_a`` / ``task.task_b``, one model and one train
section) runs this through ``memzoo.fit`` and therefore through any benchmark suite. GEM's FWT is
not computed: in its own ids B is never seen before phase B.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from typing import Any

import torch

from memzoo import tasks
from memzoo.errors import ConfigError
from memzoo.trackers import open_trackers
from memzoo.train.config import RunConfig, validate_config
from memzoo.train.environment import resolve_device
from memzoo.train.evaluation import evaluate, resolve_segment_len
from memzoo.train.lifecycle import RunResult, new_record, run_lifecycle, stored_run, tracked_run
from memzoo.train.recipes.continual_remedies import PhaseRecipe, make_remedy
from memzoo.train.recipes.single_task import build_model


def continual_phases(config: RunConfig | dict) -> tuple[RunConfig, RunConfig]:
    """The two run configs of a ``continual`` config: its model and train sections with
    ``task_a``, then ``task_b`` as the task."""
    cfg = validate_config(config)
    if cfg.task.name != "continual":
        raise ConfigError(f"task.name must be 'continual' here, got {cfg.task.name!r}")
    data, joint = cfg.model_dump(mode="json"), cfg.task.build()
    return validate_config({**data, "task": joint.task_a}), validate_config({**data, "task": joint.task_b})


def _record_config(cfg_a: RunConfig, cfg_b: RunConfig, continual: dict[str, Any]) -> dict[str, Any]:
    a, b = cfg_a.model_dump(mode="json"), cfg_b.model_dump(mode="json")
    task = {"name": "continual", "task_a": a["task"], "task_b": b["task"], **continual}
    config = {"task": task, "model": a["model"], "train": a["train"]}
    if b["train"] != a["train"]:
        config["train_b"] = b["train"]
    return config


def train_continual(
    config_a: RunConfig | dict,
    config_b: RunConfig | dict,
    store=None,
    suite: str | None = None,
    *,
    run_id: str | None = None,
    progress: bool | None = None,
    **continual: Any,
):
    """Train on A, then on B (same weights); return the record with the continual metrics.

    Both configs must describe the same model; their train sections may differ (the
    record's config then also keeps B's as ``train_b``). ``continual``: the continual task's
    own parameters (``remedy``, ``b_tokens``, ``ewc_lambda``, ...). With ``store``, the run (one
    record, both phases' epochs in its curve) is written to it.
    """
    cfg_a, cfg_b = validate_config(config_a), validate_config(config_b)
    config = _record_config(cfg_a, cfg_b, continual)
    result = run_continual(
        cfg_a, cfg_b, store=store, suite=suite, run_id=run_id, progress=progress, record_config=config
    )
    return result.record


@contextmanager
def _outputs_below(model, count: int):
    """``model`` predicting among its first ``count`` outputs only, for the block."""
    head = model.head
    if count >= head.out_features:
        yield model
        return
    small = torch.nn.Linear(head.in_features, count, device=head.weight.device, dtype=head.weight.dtype)
    small.weight.data, small.bias.data = head.weight.data[:count], head.bias.data[:count]
    model.head = small
    try:
        yield model
    finally:
        model.head = head


def _test_accuracy(model, task, cfg: RunConfig, outputs: int | None = None) -> float:
    """Accuracy of ``model`` on ``task``'s test set (drawn with ``cfg``'s seed and size); with
    ``outputs``, the prediction is the best of the first ``outputs`` output ids."""
    _, test = task.split(0, cfg.train.num_test, seed=cfg.train.seed)
    segment_len = resolve_segment_len(cfg.train, task)
    device = next(model.parameters()).device
    if outputs is not None:
        with _outputs_below(model, outputs):
            return evaluate(model, test, task.head, outputs, device, segment_len=segment_len)["accuracy"]
    return evaluate(model, test, task.head, model.head.out_features, device, segment_len=segment_len)[
        "accuracy"
    ]


def _undefined(scores: dict[str, float], threshold: float) -> str | None:
    """Why retention says nothing here (a phase not learned), or None."""
    if scores["accuracy_a_before"] < threshold:
        return f"task A was not learned (accuracy_a_before {scores['accuracy_a_before']:.3f} < {threshold})"
    if scores["accuracy_b"] < threshold:
        return f"task B was not learned after A (accuracy_b {scores['accuracy_b']:.3f} < {threshold})"
    return None


def continual_metrics(scores: dict[str, float], threshold: float) -> dict[str, Any]:
    """The record's metrics (see the module) from the measured test accuracies ``scores``:
    ``accuracy_a_before``, ``accuracy_a_after``, ``accuracy_b`` and optionally
    ``accuracy_b_alone``, ``accuracy_a_before_own_outputs``, ``accuracy_a_after_own_outputs``."""
    before, after, plasticity = scores["accuracy_a_before"], scores["accuracy_a_after"], scores["accuracy_b"]
    metrics: dict[str, Any] = {
        **scores,
        "accuracy": (after + plasticity) / 2,
        "plasticity": plasticity,
        "accuracy_a_after_phase": {"1": before, "2": after},
    }
    if "accuracy_b_alone" in scores:
        metrics["intransigence"] = scores["accuracy_b_alone"] - plasticity
    own = "accuracy_a_after_own_outputs" in scores
    reason = _undefined(scores, threshold)
    if reason is not None:
        names = ("retention", "forgetting", "continual_score") + (("retention_own_outputs",) if own else ())
        return {**metrics, **dict.fromkeys(names), "continual_undefined": reason}
    retention = after / before
    metrics.update(
        retention=retention, forgetting=before - after, continual_score=(retention + plasticity) / 2
    )
    if own:
        own_before = scores["accuracy_a_before_own_outputs"]
        metrics["retention_own_outputs"] = scores["accuracy_a_after_own_outputs"] / own_before
    return metrics


def _untracked(cfg: RunConfig) -> RunConfig:
    """``cfg`` without trackers: a phase's own run is not reported apart from the record."""
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"trackers": []})})


class _Phases:
    """The phases of one continual run on ``model``: their curve joins ``record``'s."""

    def __init__(self, joint, cfgs, record, store, trackers, progress, device):
        self.joint, (self.cfg_a, self.cfg_b) = joint, cfgs
        self.task_a, self.task_b = joint.phases
        self.record, self.store, self.trackers = record, store, trackers
        self.progress, self.device, self.epochs = progress, device, 0
        self.own_outputs = self.task_a.output_vocab_size if joint.b_tokens == "own" else None

    def train(self, recipe: PhaseRecipe, label: str, phase: int):
        """One phase through the lifecycle; its result (its curve appended to the record's)."""
        run_id = f"{self.record.run_id}-{label}"
        result = run_lifecycle(recipe, run_id=run_id, progress=self.progress, device=self.device)
        for point in result.record.curve:  # one curve, epochs counted across both phases
            self.epochs += 1
            point = {**point, "epoch": self.epochs, "phase": phase}
            self.record.curve.append(point)
            self.trackers.log_point(point)
            if self.store is not None:
                self.store.add_epoch(self.record.run_id, self.epochs, point)
        if result.status != "completed":
            self.record.conclude(result.status, f"phase {label}: {result.record.error}")
        return result

    def score_a(self, model, scores: dict[str, float], when: str) -> None:
        scores[f"accuracy_a_{when}"] = _test_accuracy(model, self.task_a, self.cfg_a)
        if self.own_outputs is not None:
            own = _test_accuracy(model, self.task_a, self.cfg_a, outputs=self.own_outputs)
            scores[f"accuracy_a_{when}_own_outputs"] = own

    def run(self, model) -> tuple[Any, dict[str, Any]]:
        """A, then B (with the remedy), then B alone when asked; the model and the metrics."""
        start = copy.deepcopy(model) if self.joint.b_alone else None
        recipe_a = PhaseRecipe(self.cfg_a, self.task_a, model=model)
        result = self.train(recipe_a, "a", 0)
        model, scores = result.model, {}
        if result.status != "completed":
            return model, {"steps_a": result.metrics.get("steps")}
        self.score_a(model, scores, "before")
        remedy = make_remedy(self.joint, recipe_a, model)
        result_b = self.train(PhaseRecipe(self.cfg_b, self.task_b, model=model, **remedy), "b", 1)
        model = result_b.model
        steps = {"steps_a": result.metrics["steps"], "steps_b": result_b.metrics.get("steps")}
        if result_b.status != "completed":
            return model, {**scores, **steps}
        self.score_a(model, scores, "after")
        scores["accuracy_b"] = _test_accuracy(model, self.task_b, self.cfg_b)
        if start is not None:
            recipe = PhaseRecipe(self.cfg_b, self.task_b, model=start)
            alone = run_lifecycle(
                recipe, run_id=f"{self.record.run_id}-b-alone", progress=self.progress, device=self.device
            )
            scores["accuracy_b_alone"] = _test_accuracy(alone.model, self.task_b, self.cfg_b)
            steps["steps_b_alone"] = alone.metrics["steps"]
        self.record.conclude("completed")
        return model, {**continual_metrics(scores, self.joint.learned_accuracy), **steps}


def _joint_task(config: dict[str, Any]):
    """The continual task a record's config describes (its remedy, tokens, thresholds)."""
    params = {key: value for key, value in config["task"].items() if key != "name"}
    return tasks.build("continual", **params)


def run_continual(
    cfg_a: RunConfig,
    cfg_b: RunConfig,
    *,
    store=None,
    suite=None,
    run_id=None,
    progress=None,
    model=None,
    record_config: dict | None = None,
) -> RunResult:
    """The phases, composed into one record (see the module). ``record_config``: the config
    the record keeps, whose ``task`` is the continual task (remedy included); default: A's and
    B's with no remedy."""
    if cfg_a.model != cfg_b.model:
        raise ConfigError("continual: both phases must describe the same model (model section)")
    config = record_config or _record_config(cfg_a, cfg_b, {})
    joint = _joint_task(config)
    device = resolve_device(cfg_a.train.device)
    record = new_record(config, "continual", cfg_a.model.layers, device, suite, run_id)
    # The one record is what trackers see (retention included), not its phases.
    trackers = open_trackers(cfg_a.train.trackers, cfg_a.train.tracker_dir)
    cfgs = (_untracked(cfg_a), _untracked(cfg_b))
    with stored_run(store, record), tracked_run(trackers, record):
        if model is None:
            torch.manual_seed(cfg_a.train.seed)  # the same start as a single-task run would build
            model = build_model(cfg_a, joint)
        record.params, record.state_bytes = model.num_params(), model.state_size(joint.seq_len)
        start = time.perf_counter()
        phases = _Phases(joint, cfgs, record, store, trackers, progress, device)
        model, metrics = phases.run(model)
    record.metrics = {**metrics, "epochs": phases.epochs}
    record.wall_seconds = time.perf_counter() - start
    record.ended_at = time.time()
    if store is not None:
        store.write_record(record)
    trackers.finish(
        record.status, record.metrics, record.state_bytes, None, error=record.error, step=phases.epochs
    )
    return RunResult(record=record, model=model, checkpoint_dir=None)
