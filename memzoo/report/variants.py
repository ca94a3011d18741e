"""Labels that tell apart runs of one layer combination that differ in their model settings.

A comparison often runs one layer combination twice with a different model setting — an
ablation (``reset_long_term_memory=true``; ``persistent`` with ``num_slots=0``) or an option
sweep. Labelled by their layers alone, such runs would be averaged together, or one of them
silently picked, in every table and plot. :func:`run_labels` therefore appends to the layer
combination the model settings in which the runs of one task and layer combination differ
(``d_model`` excepted: widths are an axis or a column of their own)::

    sliding_window+knn
    sliding_window+knn (memory reset every segment)
    sliding_window+persistent (layer_options.persistent.num_slots=0)
    sliding_window+persistent (layer_options.persistent.num_slots=16)

>>> from memzoo.results.record import RunRecord
>>> def run(run_id, **model):
...     config = {"task": {"name": "t"}, "model": {"layers": ["a", "b"], "d_model": 8, **model}}
...     return RunRecord(run_id=run_id, config=config, config_hash=run_id, status="completed",
...                      task="t", layers=["a", "b"])
>>> run_labels([run("x"), run("y", reset_long_term_memory=True), run("z", d_model=16)])
{'x': 'a+b', 'y': 'a+b (memory reset every segment)', 'z': 'a+b'}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from memzoo.results.record import RunRecord

NOT_A_VARIANT = ("layers", "d_model")  # the label's own name; widths have their own axis
_UNSET = "<unset>"
# How a setting reads in a label; None: the setting's default, left out of the label.
_PHRASES = {
    ("reset_long_term_memory", "True"): "memory reset every segment",
    ("reset_long_term_memory", "False"): None,
    ("task.remedy", "none"): "no remedy",
    ("task.remedy", "replay"): "replay",
    ("task.remedy", "ewc"): "EWC",
}
# Task settings that tell apart runs of one task and layer combination (a continual run's
# remedy against forgetting), shown in the label beside the model's.
TASK_VARIANTS = ("remedy",)


def layer_label(layers: Sequence[str]) -> str:
    """The name of a layer combination: layers joined with '+', one name if all equal.

    >>> layer_label(["attention", "attention"]), layer_label(["gru", "attention"])
    ('attention', 'gru+attention')
    """
    if not layers:
        return "(no layers)"
    if len(set(layers)) == 1:
        return layers[0]
    return "+".join(layers)


def _flat(value, prefix: str = "") -> dict[str, str]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": "1"}``; lists and scalars as JSON text."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, inner in value.items():
            out.update(_flat(inner, f"{prefix}{key}."))
        return out
    text = json.dumps(value, sort_keys=True, default=str) if isinstance(value, list) else str(value)
    return {prefix[:-1]: text}


def _model_settings(run: RunRecord) -> dict[str, str]:
    config = run.config if isinstance(run.config, dict) else {}
    model, task = config.get("model"), config.get("task")
    out = (
        {k: v for k, v in _flat(model).items() if k.split(".")[0] not in NOT_A_VARIANT}
        if isinstance(model, dict)
        else {}
    )
    if isinstance(task, dict):
        out.update({f"task.{k}": str(task[k]) for k in TASK_VARIANTS if k in task})
    return out


def _phrase(key: str, value: str) -> str | None:
    """How setting ``key=value`` reads in a label; None for an unset one (the default)."""
    if value in (_UNSET, "None"):
        return None
    return _PHRASES.get((key, value), f"{key}={value}")


def run_labels(runs: Iterable[RunRecord]) -> dict[str, str]:
    """``{run_id: label}``: the layer combination, then (in parentheses) the model settings in
    which the runs of the same task and layer combination differ."""
    runs = list(runs)
    settings = {r.run_id: _model_settings(r) for r in runs}
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((r.task, layer_label(r.layers)), []).append(r)
    labels = {}
    for (_, base), members in groups.items():
        keys = sorted({k for r in members for k in settings[r.run_id]})
        varying = [k for k in keys if len({settings[r.run_id].get(k, _UNSET) for r in members}) > 1]
        for r in members:
            phrases = [_phrase(k, settings[r.run_id].get(k, _UNSET)) for k in varying]
            phrases = [p for p in phrases if p is not None]
            labels[r.run_id] = f"{base} ({', '.join(phrases)})" if phrases else base
    return labels
