"""A benchmark job and the worker function that runs it anywhere (a process, a Ray task).

Workers never touch the results store: they return a ``RunRecord`` (curve included) and the
driver writes it, so workers need no shared filesystem.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any

from memzoo.results.record import RunRecord, config_hash
from memzoo.train import fit


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
        """The record the driver stores (status running) before dispatching the job."""
        return RunRecord(
            run_id=self.run_id,
            config=self.config,
            config_hash=self.config_hash,
            status="running",
            task=self.config["task"]["name"],
            layers=list(self.config["model"]["layers"]),
            suite=self.suite,
            started_at=time.time(),
        )


def run_job(job: Job) -> RunRecord:
    """Train ``job`` and return its record; an exception becomes a ``failed`` record."""
    try:
        return fit(job.config, suite=job.suite, run_id=job.run_id, progress=False).record
    except Exception as err:  # a failed run is data, not a crash of the sweep
        record = job.pending_record()
        record.conclude("failed", f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}")
        return record
