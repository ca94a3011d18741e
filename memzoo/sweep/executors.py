"""Executors run benchmark jobs and hand each finished record back to the driver.

An executor is anything with ``run(jobs, on_record)``: it calls ``on_record(record)`` in the
driver process exactly once per job, as jobs finish (any order). It may also accept an
``on_start`` keyword: ``on_start(job)`` is then called once per job when the job begins to
run (before its ``on_record``), so the driver can show how many runs are running.
``LocalExecutor`` uses a pool of local processes; ``RayExecutor``
(:mod:`memzoo.sweep.ray_executor`) runs jobs as Ray tasks with the same interface.

Retries (both executors): a job whose attempt ends ``failed`` (``run_job`` turned an
exception in training into a ``failed`` record, or the worker process died) is run again,
up to ``retries`` more times; the last attempt's record is what ``on_record`` gets, its
error prefixed with the number of attempts. ``diverged`` is a result, not a failure: it is
never retried. Deterministic failures are retried too (the executor cannot tell them apart
from a flaky node or an out-of-memory kill), which costs at most ``retries`` extra attempts.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from memzoo.errors import ConfigError
from memzoo.results.record import RunRecord
from memzoo.sweep.jobs import Job, run_job

OnRecord = Callable[[RunRecord], None]
OnStart = Callable[[Job], None]
JobFn = Callable[[Job], RunRecord]

# Statuses of an attempt that make the executor try the job again (while retries last).
RETRY_STATUSES = ("failed",)


class Executor(Protocol):
    name: str

    def run(self, jobs: Sequence[Job], on_record: OnRecord) -> None: ...


def check_retries(retries: int) -> int:
    if not isinstance(retries, int) or retries < 0:
        raise ConfigError(f"--retries must be an integer >= 0, got {retries!r}")
    return retries


def failed_record(job: Job, error: str) -> RunRecord:
    """The record of an attempt that produced no record of its own (its worker died)."""
    record = job.pending_record()
    record.conclude("failed", error)
    return record


def should_retry(record: RunRecord, attempt: int, retries: int) -> bool:
    """True when attempt number ``attempt`` (1-based) failed and retries are left."""
    return record.status in RETRY_STATUSES and attempt <= retries


def final_record(record: RunRecord, attempts: int) -> RunRecord:
    """The record handed to the driver; a failure says how many attempts it took."""
    if record.status in RETRY_STATUSES and attempts > 1:
        record.error = f"failed {attempts} attempts; the last one: {record.error}"
    return record


def _init_worker(threads: int) -> None:
    import torch

    # Ctrl-C in a terminal reaches the whole process group: the driver alone decides what
    # happens (it stops the pool), so a worker never dies half-way through sending a record.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """End this worker soon after its driver is gone (killed with SIGKILL, say): an orphan
    would otherwise train on, for nobody, until its current run ends."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


class LocalExecutor:
    """``workers`` local processes (spawned, so no state leaks from the driver).

    Each worker gets ``cpu_count // workers`` torch threads so the pool never oversubscribes
    the machine. At most ``workers`` jobs are handed to the pool at a time, so a job that
    was started is really running. A worker that dies (killed, out of memory) breaks the
    pool: every job in flight then counts one failed attempt and a fresh pool takes over.
    Ctrl-C (``KeyboardInterrupt``) in the driver terminates the workers at once and
    re-raises; the jobs in flight are not reported.

    Args:
        workers: number of processes (>= 1).
        retries: extra attempts for a job whose attempt failed (see the module docstring).
        job_fn: what a worker runs for one job (default :func:`~memzoo.sweep.jobs.run_job`);
            must be importable by name in a fresh process.
    """

    name = "local"

    def __init__(self, workers: int = 1, *, retries: int = 2, job_fn: JobFn = run_job):
        if workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {workers}")
        self.workers = workers
        self.retries = check_retries(retries)
        self.job_fn = job_fn
        self.threads = max(1, (os.cpu_count() or 1) // workers)

    def _pool(self, size: int) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.threads,),
        )

    def run(self, jobs: Sequence[Job], on_record: OnRecord, on_start: OnStart | None = None) -> None:
        if not jobs:
            return
        size = min(self.workers, len(jobs))
        queue: deque[tuple[Job, int]] = deque((job, 1) for job in jobs)  # (job, attempt)
        in_flight: dict = {}  # future -> (job, attempt)
        started: set[str] = set()
        pool = self._pool(size)
        try:
            while queue or in_flight:
                while queue and len(in_flight) < size:
                    job, attempt = queue.popleft()
                    in_flight[pool.submit(self.job_fn, job)] = (job, attempt)
                    if on_start is not None and job.run_id not in started:
                        started.add(job.run_id)
                        on_start(job)
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                broken = False
                for future in done:
                    job, attempt = in_flight.pop(future)
                    try:
                        record = future.result()
                    except BrokenProcessPool as err:
                        broken = True
                        record = failed_record(job, f"worker process died: {err}")
                    except Exception as err:  # e.g. a record that could not be sent back
                        record = failed_record(job, f"{type(err).__name__}: {err}")
                    if should_retry(record, attempt, self.retries):
                        queue.appendleft((job, attempt + 1))
                    else:
                        on_record(final_record(record, attempt))
                if broken:  # every future of a broken pool fails: start a fresh pool
                    pool.shutdown(wait=True)
                    pool = self._pool(size)
        except BaseException:
            _terminate_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    """Stop a pool's processes now, not after their current job (which may take minutes)."""
    terminate = getattr(pool, "terminate_workers", None)  # Python >= 3.14
    if terminate is not None:
        terminate()
        return
    # Before 3.14 there is no public way; the pool's process table is a stable attribute.
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
