"""Run benchmark jobs as Ray tasks: on this machine, or on an existing Ray cluster.

Each job is one Ray task calling ``job_fn`` (default :func:`memzoo.sweep.jobs.run_job`) and
returning its ``RunRecord`` (curve included) to the driver, which calls ``on_record`` and so
writes the SQLite store itself: workers need no shared filesystem, only memzoo and its
dependencies installed on every node.

Resources: a job asks Ray for one GPU when its config says ``train.device == "cuda"``, or
``"auto"`` on a cluster that has GPUs (``auto`` means "CUDA when available" and on Ray that is
the cluster's GPUs); otherwise ``cpus_per_run`` CPUs, and the task uses that many torch
threads, so tasks never oversubscribe a node.

Retries follow :mod:`memzoo.sweep.executors`: an attempt that ends ``failed`` (``run_job``'s
own ``failed`` record, an exception raised in the task -- ``RayTaskError`` --, or a worker or
node that died -- ``WorkerCrashedError``, ``NodeDiedError``, ...) is submitted again, up to
``retries`` more times, then reported ``failed`` with the last error. Ray's own retries are
off (``max_retries=0``) so that every attempt is counted here, once.

Ray is an optional extra: :func:`require_ray` raises a one-line ``MemzooError`` saying how to
install it.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Sequence
from typing import Any

from memzoo.errors import ConfigError, MemzooError
from memzoo.results.record import RunRecord
from memzoo.sweep.executors import (
    JobFn,
    OnRecord,
    OnStart,
    check_retries,
    failed_record,
    final_record,
    should_retry,
)
from memzoo.sweep.jobs import Job, run_job

INSTALL_HINT = "Ray is not installed; install it with: pip install 'memzoo[ray]'"
# How long the driver waits for a result before it looks for newly started tasks.
POLL_SECONDS = 0.5


def require_ray():
    """The ``ray`` module, or a one-line MemzooError saying how to install it."""
    try:
        import ray
    except ImportError as err:
        raise MemzooError(INSTALL_HINT) from err
    return ray


def _attempt(job_fn: JobFn, job: Job, threads: int, board: Any) -> RunRecord:
    """Body of one Ray task: announce the start, train with ``threads`` torch threads."""
    import torch

    if board is not None:
        board.start.remote(job.run_id)  # fire and forget: only feeds the progress display
    torch.set_num_threads(max(1, threads))
    return job_fn(job)


class _StartBoard:
    """A tiny Ray actor that tasks tell when they start (so the driver can count them)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def start(self, run_id: str) -> None:
        self.started.append(run_id)

    def drain(self) -> list[str]:
        out, self.started = self.started, []
        return out


def _error_text(err: BaseException, limit: int = 4000) -> str:
    """A Ray error as stored text: its type and message (a task error holds the remote
    traceback), cut to the last ``limit`` characters."""
    text = f"{type(err).__name__}: {err}"
    if len(text) > limit:
        text = "..." + text[-limit:]
    return text


class RayExecutor:
    """Run jobs as Ray tasks (see the module docstring for resources and retries).

    Args:
        address: a Ray cluster to join (``"auto"``: the cluster started on this machine by
            ``ray start``; ``"HOST:PORT"`` of its head). ``None``: use the Ray
            instance this process already has, or start a local one (``num_cpus`` CPUs,
            no dashboard) and shut it down when ``run`` ends.
        retries: extra attempts for a job whose attempt failed (>= 0).
        cpus_per_run: CPUs (and torch threads) a CPU job asks for.
        num_cpus: CPUs of a local instance started here (default ``os.cpu_count()``).
        job_fn: what a task runs for one job; picklable (importable on the workers).
        runtime_env: passed to ``ray.init`` (e.g. ``{"py_modules": [...]}``) when joining.

    Raises:
        MemzooError: Ray is not installed, or the cluster cannot be reached.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        retries: int = 2,
        *,
        cpus_per_run: int = 1,
        num_cpus: int | None = None,
        job_fn: JobFn = run_job,
        runtime_env: dict[str, Any] | None = None,
    ):
        self.ray = require_ray()
        if cpus_per_run < 1:
            raise ConfigError(f"cpus_per_run must be >= 1, got {cpus_per_run}")
        self.address = address
        self.retries = check_retries(retries)
        self.cpus_per_run = cpus_per_run
        self.num_cpus = num_cpus or os.cpu_count() or 1
        self.job_fn = job_fn
        self.runtime_env = runtime_env
        self._started_ray = False

    # ---------------------------------------------------------------- cluster
    def __enter__(self) -> RayExecutor:
        """Start or join Ray now (before a benchmark claims its runs in the store)."""
        self._started_ray = self._connect() or self._started_ray
        return self

    def __exit__(self, *exc: object) -> None:
        """Shut Ray down if this executor started it."""
        if self._started_ray:
            self.ray.shutdown()
            self._started_ray = False

    def _connect(self) -> bool:
        """Make sure Ray is initialised; True if this call started it (and must stop it)."""
        ray = self.ray
        if ray.is_initialized():
            return False
        common = {"include_dashboard": False, "logging_level": logging.WARNING}
        try:
            if self.address is None:
                # "local": a fresh instance even when RAY_ADDRESS or a `ray start` exists.
                ray.init(address="local", num_cpus=self.num_cpus, **common)
            else:
                ray.init(address=self.address, runtime_env=self.runtime_env, **common)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = self.address or "a local Ray instance"
            hint = ""
            if self.address not in (None, "auto") and "RAY_AUTH_MODE" not in os.environ:
                hint = (
                    "; if the cluster uses token authentication (the default of `ray start`"
                    " in recent Ray), set RAY_AUTH_MODE=token and give its token in "
                    "~/.ray/auth_token or RAY_AUTH_TOKEN"
                )
            raise MemzooError(f"cannot start or join Ray at {where}: {err}{hint}") from err
        return True

    def _wants_gpu(self, job: Job, cluster_gpus: float) -> bool:
        device = job.config.get("train", {}).get("device", "auto")
        return device == "cuda" or (device == "auto" and cluster_gpus > 0)

    # ---------------------------------------------------------------- run
    def run(self, jobs: Sequence[Job], on_record: OnRecord, on_start: OnStart | None = None) -> None:
        """Run ``jobs``; outside a ``with`` block, Ray is started/joined (and a Ray started
        here shut down) around this call."""
        if not jobs:
            return
        if self.ray.is_initialized():
            self._run(list(jobs), on_record, on_start)
            return
        with self:
            self._run(list(jobs), on_record, on_start)

    def _run(self, jobs: list[Job], on_record: OnRecord, on_start: OnStart | None) -> None:
        ray = self.ray
        from ray.exceptions import RayError

        gpus = ray.cluster_resources().get("GPU", 0)
        task = ray.remote(_attempt)
        board = ray.remote(num_cpus=0)(_StartBoard).remote() if on_start is not None else None
        in_flight: dict[Any, tuple[Job, int]] = {}  # ObjectRef -> (job, attempt)
        announced: set[str] = set()
        by_id = {job.run_id: job for job in jobs}

        def submit(job: Job, attempt: int) -> None:
            gpu = self._wants_gpu(job, gpus)
            options = {
                "num_cpus": 1 if gpu else self.cpus_per_run,
                "num_gpus": 1 if gpu else 0,
                "max_retries": 0,
                "retry_exceptions": False,
            }
            threads = 1 if gpu else self.cpus_per_run
            in_flight[task.options(**options).remote(self.job_fn, job, threads, board)] = (job, attempt)

        def announce(run_ids: list[str]) -> None:
            for run_id in run_ids:
                if run_id in by_id and run_id not in announced:
                    announced.add(run_id)
                    on_start(by_id[run_id])

        try:
            for job in jobs:
                submit(job, 1)
            while in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=POLL_SECONDS)
                if board is not None:
                    announce(_drain(ray, board))
                for ref in ready:
                    job, attempt = in_flight.pop(ref)
                    try:
                        record = ray.get(ref)
                    except RayError as err:  # raised in the task, or its worker/node died
                        record = failed_record(job, _error_text(err))
                    if should_retry(record, attempt, self.retries):
                        submit(job, attempt + 1)
                        continue
                    if on_start is not None:
                        announce([job.run_id])  # its start notice may not have arrived yet
                    on_record(final_record(record, attempt))
        except BaseException:
            for ref in in_flight:  # Ctrl-C or a driver error: stop what is still running
                ray.cancel(ref, force=True)
            raise
        finally:
            if board is not None:
                ray.kill(board)


def _drain(ray: Any, board: Any) -> list[str]:
    """Run ids the tasks announced since the last call; [] if the board is unreachable
    (the display then learns of a start when the run finishes)."""
    try:
        return ray.get(board.drain.remote(), timeout=10)
    except Exception:
        logging.getLogger(__name__).debug("start board unreachable\n%s", traceback.format_exc())
        return []
