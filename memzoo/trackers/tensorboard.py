"""TensorBoard: event files through ``torch.utils.tensorboard.SummaryWriter``.

A run's events go to ``<tracker_dir>/tensorboard/<run_id>/`` (``tensorboard --logdir
<tracker_dir>/tensorboard`` shows every run side by side):

    scalars   each curve point's numbers at step = its epoch; ``final/<name>`` and
              ``state_bytes`` at the last step
    texts     ``config`` (the run's config as JSON), ``tags``, ``status``,
              ``checkpoint_path``, ``error``

A resumed run writes a new event file into the same folder (TensorBoard reads them as one
run). Each point is flushed at once, so a killed run keeps the points it logged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from memzoo.files import make_folder, refuse_links
from memzoo.trackers.base import Ending, Tracker, require, tracker_run_id


def as_code(text: str) -> str:
    """``text`` as a Markdown code block (TensorBoard renders texts as Markdown)."""
    return "\n".join("    " + line for line in text.splitlines())


class TensorBoardTracker(Tracker):
    """Event files under ``<tracker_dir>/tensorboard/<run_id>/`` (see the module)."""

    name = "tensorboard"

    def __init__(self, root: str | Path):
        self._summary_writer = require("torch.utils.tensorboard", "tensorboard", self.name).SummaryWriter
        super().__init__(root)
        self.writer = None

    def run_folder(self, run_id: str) -> Path:
        return self.folder / tracker_run_id(run_id)

    def has_run(self, run_id: str) -> bool:
        return self.run_folder(run_id).is_dir()

    def start(self, run_id: str, config: dict[str, Any], tags: dict[str, str]) -> None:
        folder = self.run_folder(run_id)
        refuse_links(folder, "tensorboard run folder")
        self.writer = self._summary_writer(log_dir=str(make_folder(folder, "tensorboard run folder")))
        self.writer.add_text("config", as_code(json.dumps(config, indent=2, sort_keys=True, default=str)), 0)
        self.writer.add_text("tags", as_code(json.dumps(tags, indent=2)), 0)
        self.writer.flush()

    def log_point(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def finish(self, ending: Ending) -> None:
        try:
            for key, value in ending.metrics.items():
                self.writer.add_scalar(key, value, ending.step)
            for key, text in ending.texts().items():
                self.writer.add_text(key, text, ending.step)
        finally:
            self.close()

    def close(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()
