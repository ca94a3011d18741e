"""Sending runs already stored (``memzoo export``) to a tracker, each run once.

A run the tracker already holds (its TensorBoard folder exists, an MLflow run carries its
``memzoo_run_id`` tag, a W&B folder has its id) is skipped, so exporting again sends only
the runs added since. A run is sent as a live run would have been: its config and tags, its
curve point by point, then its status, final metrics, state bytes and checkpoint path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memzoo.errors import first_line
from memzoo.trackers.base import Tracker, Trackers, report, run_tags
from memzoo.trackers.registry import open_trackers

SENT, ALREADY, FAILED = "sent", "already there", "failed"


@dataclass
class ExportSummary:
    """What an export did, by run id: ``sent``, ``already`` there, ``failed`` (each failure
    was reported on stderr)."""

    tracker: str
    folder: Path
    sent: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def line(self) -> str:
        """``"N sent, M already there"`` (and ``", K failed"`` when some did)."""
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return f"{len(self.sent)} sent, {len(self.already)} already there{failed}"


def export_runs(
    runs: Iterable[Mapping[str, Any]],
    to: str,
    tracker_dir: str | Path,
    *,
    on_run: Callable[[str, str], None] | None = None,
) -> ExportSummary:
    """Send each of ``runs`` to tracker ``to`` under ``tracker_dir``, unless it is there.

    Args:
        runs: plain mappings with a run record's fields: ``run_id``, ``config``, ``curve``
            (points with ``epoch``), ``metrics``, ``state_bytes``, ``status``, ``error``,
            the tag fields (``task``, ``layers``, ``suite``, ...), and optionally
            ``checkpoint_path``.
        to: a tracker name (``tensorboard``, ``mlflow``, ``wandb``).
        on_run: called with ``(run_id, outcome)`` after each run (``"sent"``,
            ``"already there"``, ``"failed"``): progress.

    Raises:
        MemzooError: an unknown tracker, a ``tracker_dir`` that cannot be written, the
            tracker's package missing; before anything is sent.
    """
    tracker = open_trackers([to], tracker_dir, "--tracker-dir").active[0]
    summary = ExportSummary(to, tracker.folder)
    for run in runs:
        run_id = str(run["run_id"])
        outcome = _export_one(tracker, run_id, run)
        {SENT: summary.sent, ALREADY: summary.already, FAILED: summary.failed}[outcome].append(run_id)
        if on_run is not None:
            on_run(run_id, outcome)
    return summary


def _export_one(tracker: Tracker, run_id: str, run: Mapping[str, Any]) -> str:
    """Send one run unless ``tracker`` holds it; the outcome."""
    try:
        if tracker.has_run(run_id):
            return ALREADY
    except Exception as err:  # e.g. a stored run id that cannot name a folder
        report(f"{tracker.name}: run {run_id[:80]!r} not sent ({first_line(err, 200)})")
        return FAILED
    one = Trackers([tracker])
    one.start(run_id, dict(run.get("config") or {}), run_tags(run_id, run))
    for point in run.get("curve") or []:
        one.log_point(point)
    one.finish(
        str(run.get("status")),
        run.get("metrics") or {},
        run.get("state_bytes"),
        run.get("checkpoint_path"),
        error=run.get("error"),
    )
    return FAILED if one.dropped else SENT
