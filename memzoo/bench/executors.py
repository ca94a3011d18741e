"""Executors run benchmark jobs and hand each finished record back to the driver.

An executor is anything with ``run(jobs, on_record)``: it calls ``on_record(record)`` in the
driver process once per job, as jobs finish (any order). ``LocalExecutor`` uses a pool of
local processes; a distributed executor (Ray) plugs in with the same method.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Protocol

from memzoo.bench.jobs import Job, run_job
from memzoo.bench.record import RunRecord

OnRecord = Callable[[RunRecord], None]


class Executor(Protocol):
    name: str

    def run(self, jobs: Sequence[Job], on_record: OnRecord) -> None: ...


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


class LocalExecutor:
    """``workers`` local processes (spawned, so no state leaks from the driver).

    Each worker gets ``cpu_count // workers`` torch threads so the pool never oversubscribes
    the machine.
    """

    name = "local"

    def __init__(self, workers: int = 1):
        if workers < 1:
            from memzoo.errors import ConfigError

            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self.threads = max(1, (os.cpu_count() or 1) // workers)

    def run(self, jobs: Sequence[Job], on_record: OnRecord) -> None:
        if not jobs:
            return
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(self.workers, len(jobs)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(self.threads,),
        ) as pool:
            pending = {pool.submit(run_job, job) for job in jobs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    on_record(future.result())
