"""Weights & Biases: offline runs under ``<tracker_dir>/wandb/``; nothing goes over the network.

A memzoo run is the W&B run of id ``<run_id>`` in project ``memzoo`` (``wandb.init(id=run_id,
resume="allow", mode="offline")``): its folder is ``<tracker_dir>/wandb/offline-run-<time>-
<run_id>/`` (W&B adds ``-1``, ``-2``... to a second one within the same second), whose
``run-<run_id>.wandb`` file holds what was logged. ``wandb sync
<that folder>`` uploads it later; a resumed run is a second folder with the same id, and
syncing both sends them to one W&B run.

    config    the run's config; tags: ``key:value`` of the run's tags (64 characters at most)
    history   each curve point's numbers at step = its epoch
    summary   ``final/<name>``, ``state_bytes``, ``status``, ``checkpoint_path``, ``error``

Quiet and light: ``silent``, no console capture, no code or git capture, no system-metrics
sampling, no symbolic links (``latest-run``). The run is finished with exit code 0 (completed,
truncated) or 1; then, unless the process holds another W&B run of its own (``wandb.run``),
``wandb.teardown()`` stops the W&B service process, so none lingers after a run. W&B writes
its own debug log under ``~/.cache/wandb`` (``WANDB_CACHE_DIR``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from memzoo.trackers.base import Ending, Tracker, require, tracker_run_id

PROJECT = "memzoo"
MAX_TAG = 64  # W&B refuses longer tags
_RUN_FOLDER = re.compile(r"(?:offline-)?run-\d{8}_\d{6}-.+")


class WandbTracker(Tracker):
    """Offline W&B runs under ``<tracker_dir>/wandb/`` (see the module)."""

    name = "wandb"

    def __init__(self, root: str | Path):
        self._wandb = require("wandb", "wandb", self.name)
        super().__init__(root)  # root/wandb: the folder W&B itself makes under its ``dir``
        self.run = None

    def run_folders(self, run_id: str) -> list[Path]:
        """The folders W&B wrote for run ``run_id`` (one per start), oldest first: those named
        ``[offline-]run-<time>-<id>[-<n>]`` (W&B adds ``-<n>`` within one second) that hold
        ``run-<run_id>.wandb``."""
        log = f"run-{tracker_run_id(run_id)}.wandb"
        found = [p for p in self.folder.iterdir() if _RUN_FOLDER.fullmatch(p.name) and (p / log).is_file()]
        return sorted(found, key=lambda p: p.name.removeprefix("offline-"))

    def has_run(self, run_id: str) -> bool:
        return bool(self.run_folders(run_id))

    def start(self, run_id: str, config: dict[str, Any], tags: dict[str, str]) -> None:
        wandb = self._wandb
        settings = wandb.Settings(
            silent=True,
            console="off",
            save_code=False,
            disable_git=True,
            symlink=False,
            use_dot_wandb=False,
            x_disable_stats=True,
        )
        self.run = wandb.init(
            project=PROJECT,
            id=tracker_run_id(run_id),
            name=run_id,
            resume="allow",
            mode="offline",
            dir=str(self.root),
            config=config,
            tags=[f"{k}:{v}"[:MAX_TAG] for k, v in tags.items() if k != "memzoo_run_id"],
            settings=settings,
            reinit="create_new",
        )

    def log_point(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=step)

    def finish(self, ending: Ending) -> None:
        try:
            self.run.summary.update({**ending.metrics, **ending.texts()})
        finally:
            self._end(0 if ending.clean else 1)

    def close(self) -> None:
        self._end(1)

    def _end(self, exit_code: int) -> None:
        """Finish the run, then stop the W&B service unless the process has a run of its own."""
        run, self.run = self.run, None
        try:
            if run is not None:
                run.finish(exit_code=exit_code)
        finally:
            if self._wandb.run is None:
                self._wandb.teardown()
