"""Metrics a task adds to a run beyond the evaluation of its held-out set.

Optional task methods, looked up by name (a task without them adds nothing):

- ``training_set_metrics(train_data) -> {name: number}``: facts about the training set,
  e.g. ``memorization``'s ``facts_seen_fraction`` (the ceiling of its test accuracy);
- ``baseline_metrics(test_data) -> {name: number}``: what a model-free baseline scores on
  the run's held-out data, in the units of the run's own metric, e.g. ``digits``'
  ``majority_accuracy`` or ``forecast``'s ``seasonal_naive_mae``, so that a stored run can be
  judged against it (the report's Applications section does);
- ``evaluation_sweep() -> {setting: {value: task}}``: variants of the task to evaluate the
  trained model on (never trained on), e.g. ``cross_segment_recall`` at other distances.
  Each setting becomes a metric ``accuracy_by_<setting>``, a dict keyed by the value as a
  string (``{"64": 0.98, "4096": 0.41}``), which the report plots as a line per layer;
- ``model_metrics(model, test_data) -> {name: number}``: application metrics of the trained
  model that the trainer's evaluation does not compute, e.g. ``recommend``'s ``hr@10``
  (:func:`trained_model_metrics`; the trainer adds them to every run).

``test_data`` is the held-out set the trainer scored the run on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def training_set_metrics(task, train_data) -> dict[str, Any]:
    """The task's ``training_set_metrics(train_data)``, or ``{}``."""
    hook = getattr(task, "training_set_metrics", None)
    return dict(hook(train_data)) if callable(hook) else {}


def baseline_metrics(task, test_data) -> dict[str, float]:
    """The task's ``baseline_metrics`` on the run's held-out ``test_data``, or ``{}``."""
    hook = getattr(task, "baseline_metrics", None)
    return dict(hook(test_data)) if callable(hook) else {}


def trained_model_metrics(task, model, test_data) -> dict[str, float]:
    """The task's ``model_metrics`` of the trained ``model`` on ``test_data``, or ``{}``."""
    hook = getattr(task, "model_metrics", None)
    return dict(hook(model, test_data)) if callable(hook) else {}


def evaluation_sweep_metrics(
    task, num_test: int, seed: int, evaluate_on: Callable[[Any, Any], dict]
) -> dict[str, Any]:
    """``accuracy_by_<setting>`` for each setting of the task's ``evaluation_sweep()``.

    ``evaluate_on(variant, test_data)`` returns the metrics of the trained model on one
    variant's held-out data (``num_test`` examples drawn as the variant's ``split`` does).
    """
    hook = getattr(task, "evaluation_sweep", None)
    if not callable(hook):
        return {}
    out: dict[str, Any] = {}
    for setting, variants in hook().items():
        accuracies = {}
        for value, variant in sorted(variants.items()):
            _, test = variant.split(0, num_test, seed=seed)
            accuracies[f"{value:g}" if isinstance(value, float) else str(value)] = float(
                evaluate_on(variant, test)["accuracy"]
            )
        out[f"accuracy_by_{setting}"] = accuracies
    return out
