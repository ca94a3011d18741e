"""A run record: what a worker returns and what the results store keeps for one run."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

# "queued" (claimed by a benchmark, not started by a worker yet) and "interrupted" (its
# process ended without finishing it) are how the store shows a row stored "running"; see
# ``ResultsStore.runs``.
RUN_STATUSES = ("queued", "running", "completed", "failed", "diverged", "truncated", "interrupted")

# How a run's status may change (see ``RunRecord.conclude``): a running run ends once; a run
# stopped by its wall-time cap may still turn out diverged (non-finite weights at the end).
_ENDINGS = {"running": ("completed", "truncated", "diverged", "failed"), "truncated": ("diverged",)}


# Settings that say where a run is also reported, not what it measures: left out of the hash,
# so turning a tracker on neither reruns a finished suite nor splits a cell.
NOT_HASHED = {"train": ("trackers", "tracker_dir")}


def config_hash(config: dict[str, Any]) -> str:
    """Stable 16-hex-digit hash of a JSON-able config (key order does not matter), without
    the :data:`NOT_HASHED` settings."""
    kept = dict(config)
    for section, names in NOT_HASHED.items():
        if isinstance(kept.get(section), dict):
            kept[section] = {k: v for k, v in kept[section].items() if k not in names}
    blob = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class RunRecord:
    """One training run. ``curve`` holds one dict per epoch (``epoch``, ``train_loss``,
    ``accuracy``, ... ). ``metrics`` holds the final evaluation (always ``accuracy``)."""

    run_id: str
    config: dict[str, Any]
    config_hash: str
    status: str
    task: str
    layers: list[str]
    device: str = "cpu"
    git_rev: str | None = None
    suite: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    params: int | None = None
    state_bytes: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float | None = None
    curve: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def conclude(self, status: str, error: str | None = None) -> bool:
        """End the run as ``status`` (with ``error``, the one-line reason) if the state machine
        allows it: ``running`` -> ``completed`` | ``truncated`` | ``diverged`` | ``failed``, and
        ``truncated`` -> ``diverged``. The first ending wins; a later one returns False and
        changes nothing. ``ended_at`` becomes now."""
        if status not in _ENDINGS.get(self.status, ()):
            return False
        self.status, self.ended_at = status, time.time()
        if error is not None:
            self.error = error
        return True
