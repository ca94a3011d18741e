"""Tracker names -> tracker classes, and opening the trackers a run chose."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from memzoo.errors import MemzooError
from memzoo.files import check_writable_folder
from memzoo.trackers.base import TRACKER_NAMES, Tracker, Trackers, check_tracker_names
from memzoo.trackers.mlflow_tracker import MlflowTracker
from memzoo.trackers.tensorboard import TensorBoardTracker
from memzoo.trackers.wandb_tracker import WandbTracker

#: every tracker, by the name ``train.trackers`` and ``memzoo export --to`` use
TRACKERS: dict[str, type[Tracker]] = {
    TensorBoardTracker.name: TensorBoardTracker,
    MlflowTracker.name: MlflowTracker,
    WandbTracker.name: WandbTracker,
}
assert tuple(TRACKERS) == TRACKER_NAMES


def open_trackers(names: Iterable[str], tracker_dir: str | Path, what: str = "train.tracker_dir") -> Trackers:
    """The trackers ``names`` writing under ``tracker_dir`` (``what`` names it in errors),
    wrapped in a failure-isolating :class:`Trackers`. No names: an empty one, nothing touched.

    Raises ``MemzooError`` (one line) before any work: an unknown or repeated name, a
    ``tracker_dir`` that is a link or cannot be written, a tracker's missing package."""
    names = list(names)
    if not names:
        return Trackers()
    try:
        check_tracker_names(names)
    except ValueError as err:
        raise MemzooError(str(err)) from None
    root = check_writable_folder(tracker_dir, what)
    return Trackers([TRACKERS[name](root) for name in names])
