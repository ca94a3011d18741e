"""Labels that tell apart runs of one layer combination that differ in their model settings.

A comparison often runs one layer combination twice with a different model setting — an
ablation (``reset_long_term_memory=true``; ``persistent`` with ``num_slots=0``) or an option
sweep. Labelled by their layers alone, such runs would be averaged together, or one of them
silently picked, in every table and plot. :func:`run_labels` therefore appends to the layer
combination the model settings in which the runs of one task and layer combination differ
(``d_model`` excepted: widths are an axis or a column of their own)::

    sliding_window+knn
    sliding_window+knn (memory reset every segment)
    sliding_window+persistent (persistent.num_slots=0)
    sliding_window+persistent (persistent.num_slots=16)

Two models are named as what they are, not by a layer name: the ``memory_tokens`` layer is
"memory tokens (per layer)" (memory tokens inside one layer), and a run with ``model.rmt``
(a Recurrent Memory Transformer: memory tokens through the whole stack) is
"RMT (M memory tokens through the stack): <layers>", its ablation ``num_memory=0`` included::

    sliding_window+memory tokens (per layer)
    RMT (8 memory tokens through the stack): sliding_window+attention
    RMT (0 memory tokens through the stack): sliding_window+attention

>>> from memzoo.results.record import RunRecord
>>> def run(run_id, **model):
...     config = {"task": {"name": "t"}, "model": {"layers": ["a", "b"], "d_model": 8, **model}}
...     return RunRecord(run_id=run_id, config=config, config_hash=run_id, status="completed",
...                      task="t", layers=["a", "b"])
>>> run_labels([run("x"), run("y", reset_long_term_memory=True), run("z", d_model=16)])
{'x': 'a+b', 'y': 'a+b (memory reset every segment)', 'z': 'a+b'}
>>> run_labels([run("r", rmt={"num_memory": 8, "segment_len": None}), run("p")])
{'r': 'RMT (8 memory tokens through the stack): a+b', 'p': 'a+b'}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from memzoo.layers import registry
from memzoo.results.record import RunRecord

NOT_A_VARIANT = ("layers", "d_model")  # the label's own name; widths have their own axis
IN_THE_NAME = ("rmt.num_memory",)  # settings the model's name already says
# Layers named by what they are where a layer name would mislead.
LAYER_NAMES = {"memory_tokens": "memory tokens (per layer)"}
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
# remedy against forgetting; the longest distance a recall run trained on), shown in the label
# beside the model's.
TASK_VARIANTS = ("remedy", "max_distance")


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


def model_label(run: RunRecord) -> str:
    """The name of a run's model: its layer combination (with :data:`LAYER_NAMES`), or
    with ``model.rmt`` set "RMT (M memory tokens through the stack): <layers>".

    >>> from memzoo.results.record import RunRecord
    >>> model = {"layers": ["sliding_window", "memory_tokens"], "rmt": {"num_memory": 4}}
    >>> rmt = RunRecord(run_id="r", config={"model": model}, config_hash="r", status="completed",
    ...                 task="t", layers=model["layers"])
    >>> model_label(rmt)
    'RMT (4 memory tokens through the stack): sliding_window+memory tokens (per layer)'
    """
    layers = layer_label([LAYER_NAMES.get(name, name) for name in run.layers])
    model = run.config.get("model") if isinstance(run.config, dict) else None
    rmt = model.get("rmt") if isinstance(model, dict) else None
    if not isinstance(rmt, dict):
        return layers
    return f"RMT ({rmt.get('num_memory', '?')} memory tokens through the stack): {layers}"


def memory_name(run: RunRecord) -> str:
    """What a run's memory is, across its sizes (a line of a budget plot): its layers joined
    by '+' (one name if all equal, as :func:`layer_label`), prefixed "RMT: " for a Recurrent
    Memory Transformer (whose memory is not a layer)."""
    layers = layer_label(run.layers)
    return f"RMT: {layers}" if model_label(run).startswith("RMT (") else layers


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
        {
            k: v
            for k, v in _flat(model).items()
            if k.split(".")[0] not in NOT_A_VARIANT and k not in IN_THE_NAME
        }
        if isinstance(model, dict)
        else {}
    )
    if isinstance(task, dict):
        out.update({f"task.{k}": str(task[k]) for k in TASK_VARIANTS if k in task})
    return out


def _layer_default(key: str) -> str:
    """The default of ``layer_options.<layer>.<option>`` for a registered layer (as
    :func:`_flat` writes a stored value), so a run that leaves an option unset and one that
    sets it to its default read alike; :data:`_UNSET` for other settings. Only registered
    layers are asked: a layer named by import path is never imported here.

    >>> _layer_default("layer_options.knn.capacity"), _layer_default("layer_options.my.mod:L.x")
    ('4096', '<unset>')
    """
    parts = key.split(".", 2)
    if len(parts) != 3 or parts[0] != "layer_options" or parts[1] not in registry.names():
        return _UNSET
    defaults = registry.accepted_kwargs(parts[1])
    return _flat(defaults[parts[2]])[""] if parts[2] in defaults else _UNSET


def _setting(settings: dict[str, str], key: str) -> str:
    return settings[key] if key in settings else _layer_default(key)


def _phrase(key: str, value: str) -> str | None:
    """How setting ``key=value`` reads in a label; None for an unset one (the default)."""
    if value in (_UNSET, "None"):
        return None
    if key == "task.max_distance":
        return f"trained to distance {value}"
    # "layer_options.knn.capacity" reads "knn.capacity": the layer still names the option.
    return _PHRASES.get((key, value), f"{key.removeprefix('layer_options.')}={value}")


def run_labels(runs: Iterable[RunRecord]) -> dict[str, str]:
    """``{run_id: label}``: the model's name (:func:`model_label`), then (in parentheses) the
    model settings in which the runs of the same task and model name differ."""
    runs = list(runs)
    settings = {r.run_id: _model_settings(r) for r in runs}
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((r.task, model_label(r)), []).append(r)
    labels = {}
    for (_, base), members in groups.items():
        keys = sorted({k for r in members for k in settings[r.run_id]})
        # An option left unset reads as the layer's default: {} and {"hidden_mult": 4} alike.
        values = {r.run_id: {k: _setting(settings[r.run_id], k) for k in keys} for r in members}
        varying = [k for k in keys if len({values[r.run_id][k] for r in members}) > 1]
        for r in members:
            phrases = [_phrase(k, values[r.run_id][k]) for k in varying]
            phrases = [p for p in phrases if p is not None]
            labels[r.run_id] = f"{base} ({', '.join(phrases)})" if phrases else base
    return labels
