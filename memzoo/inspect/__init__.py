"""Looking inside a trained memory: forgetting, interference, capacity and overwrite curves,
and what each layer wrote and where it read (see ``memzoo inspect``)."""

from memzoo.inspect.curves import CURVES, recall_curve
from memzoo.inspect.gates import inspect_layers
from memzoo.inspect.probes import ROLES, RecallLayout, layout_for_task
from memzoo.inspect.run import INSPECTION, inspect_checkpoint, inspect_model, inspect_stored_run

__all__ = [
    "CURVES",
    "INSPECTION",
    "ROLES",
    "RecallLayout",
    "inspect_checkpoint",
    "inspect_layers",
    "inspect_model",
    "inspect_stored_run",
    "layout_for_task",
    "recall_curve",
]
