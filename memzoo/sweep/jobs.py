"""A benchmark job and the worker function that runs it anywhere (a process, a Ray task).

Workers never touch the results store: they return a ``RunRecord`` (curve included) and the
driver writes it, so workers need no shared filesystem.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from memzoo.results.record import RunRecord, config_hash
from memzoo.train import fit
from memzoo.train.lifecycle import new_record


@dataclass(frozen=True)
class Job:
    """One run of a suite: its id, its validated config as JSON-able dict, its suite."""

    run_id: str
    config: dict[str, Any]
    suite: str | None

    @property
    def config_hash(self) -> str:
        return config_hash(self.config)

    def pending_record(self) -> RunRecord:
        """The record the driver stores (status running) before dispatching the job (device
        "cpu" until the worker's own record replaces it)."""
        config = self.config
        return new_record(
            config, config["task"]["name"], config["model"]["layers"], "cpu", self.suite, self.run_id
        )


def run_job(job: Job) -> RunRecord:
    """Train ``job`` and return its record; an exception becomes a ``failed`` record."""
    try:
        return fit(job.config, suite=job.suite, run_id=job.run_id, progress=False).record
    except Exception as err:  # a failed run is data, not a crash of the sweep
        record = job.pending_record()
        record.conclude("failed", f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}")
        return record
