"""Experiment trackers: a run also logged to TensorBoard, MLflow or W&B, offline.

``train.trackers=[tensorboard,mlflow,wandb]`` (any subset; the extra ``memzoo[trackers]``)
logs a run's config, its curve as it trains, its final metrics, state bytes and checkpoint
path, from the one run lifecycle (``memzoo.train.lifecycle``), under ``train.tracker_dir``
(default ``results/trackers``). ``memzoo export --to NAME`` sends runs already stored
(:func:`export_runs`). A tracker that fails is reported once and dropped; the run goes on.

None of the trackers' packages is imported until a tracker is opened.
"""

from memzoo.trackers.base import (
    INSTALL_HINT,
    TRACKER_NAMES,
    Ending,
    Tracker,
    TrackerName,
    Trackers,
    check_tracker_names,
    run_tags,
)
from memzoo.trackers.export import ExportSummary, export_runs
from memzoo.trackers.registry import TRACKERS, open_trackers

__all__ = [
    "INSTALL_HINT",
    "TRACKERS",
    "TRACKER_NAMES",
    "Ending",
    "ExportSummary",
    "Tracker",
    "TrackerName",
    "Trackers",
    "check_tracker_names",
    "export_runs",
    "open_trackers",
    "run_tags",
]
