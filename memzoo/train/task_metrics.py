"""Metrics a task adds to a run beyond the evaluation of its held-out set.

Two optional task methods, looked up by name (a task without them adds nothing):

- ``training_set_metrics(train_data) -> {name: number}``: facts about the training set,
  e.g. ``memorization``'s ``facts_seen_fraction`` (the ceiling of its test accuracy);
- ``evaluation_sweep() -> {setting: {value: task}}``: variants of the task to evaluate the
  trained model on (never trained on), e.g. ``cross_segment_recall`` at other distances.
  Each setting becomes a metric ``accuracy_by_<setting>``, a dict keyed by the value as a
  string (``{"64": 0.98, "4096": 0.41}``), which the report plots as a line per layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def training_set_metrics(task, train_data) -> dict[str, Any]:
    """The task's ``training_set_metrics(train_data)``, or ``{}``."""
    hook = getattr(task, "training_set_metrics", None)
    return dict(hook(train_data)) if callable(hook) else {}


def evaluation_sweep_metrics(
    task, num_test: int, seed: int, evaluate_on: Callable[[Any, Any], dict]
) -> dict[str, dict[str, float]]:
    """``accuracy_by_<setting>`` for each setting of the task's ``evaluation_sweep()``.

    ``evaluate_on(variant, test_data)`` returns the metrics of the trained model on one
    variant's held-out data (``num_test`` examples drawn as the variant's ``split`` does).
    """
    hook = getattr(task, "evaluation_sweep", None)
    if not callable(hook):
        return {}
    out = {}
    for setting, variants in hook().items():
        accuracies = {}
        for value, variant in sorted(variants.items()):
            _, test = variant.split(0, num_test, seed=seed)
            accuracies[f"{value:g}" if isinstance(value, float) else str(value)] = float(
                evaluate_on(variant, test)["accuracy"]
            )
        out[f"accuracy_by_{setting}"] = accuracies
    return out
