"""The benchmark driver: expand a suite into jobs, skip what is done, run the rest, store.

Resuming is the default: a config (by hash) already ``completed``/``diverged`` in the same
suite is skipped; a row left ``running`` by a killed driver, or ``failed``, is replaced by a
fresh run (``ResultsStore.claim``), so no run is duplicated or lost.

The driver claims every run it will do up front: they read ``queued`` until a worker starts
one (``running``). Interrupting the driver (Ctrl-C) marks the runs it had not finished
``failed`` ("interrupted") before the ``KeyboardInterrupt`` goes on; a driver killed outright
leaves them stored ``running`` under its dead lease: they read ``interrupted`` (or ``queued``,
those no worker started). Either way the next ``run_bench`` of the suite runs them again.

Two drivers of one suite on one database share the work: each claims a config atomically
(one ``BEGIN IMMEDIATE`` transaction) under a :class:`~memzoo.results.lease.Lease` that a
:class:`~memzoo.results.lease.Heartbeat` renews, so a config another live driver holds is
skipped, and the claims of a driver that was killed lapse (at once on the same machine,
after the lease's ttl elsewhere).
"""

from __future__ import annotations

import contextlib
import inspect
import time
from dataclasses import dataclass, field

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from memzoo.errors import MemzooError
from memzoo.results.lease import Heartbeat, Lease
from memzoo.results.record import RunRecord
from memzoo.results.store import ResultsStore
from memzoo.sweep.executors import Executor
from memzoo.sweep.inspections import InspectSummary, inspect_runs, to_inspect
from memzoo.sweep.jobs import Job
from memzoo.sweep.suites import suite_configs
from memzoo.train.config import apply_overrides, validate_config
from memzoo.train.run_ids import new_run_id


@dataclass
class BenchSummary:
    suite: str
    total: int
    skipped: int = 0
    completed: int = 0
    failed: int = 0
    diverged: int = 0
    running: int = 0
    wall_seconds: float = 0.0
    run_ids: list[str] = field(default_factory=list)
    inspection: InspectSummary | None = None  # with inspect_after


def plan_jobs(
    suite: str, store: ResultsStore, overrides: list[str] = (), lease: Lease | None = None
) -> tuple[list[Job], int]:
    """Jobs still to run for ``suite`` (claimed in the store, under ``lease``: ``queued``) and
    how many were skipped because they already finished or another live benchmark holds them.

    ``overrides`` (dotted ``key=value``, as for ``memzoo train``) apply to every config of
    the suite, e.g. ``train.max_seconds=120``; they are part of each config's hash, so a
    suite run with other overrides is a different set of runs."""
    configs = [
        validate_config(apply_overrides(c.model_dump(mode="json"), list(overrides))).model_dump(mode="json")
        for c in suite_configs(suite)
    ]
    unique = {Job("", c, suite).config_hash: c for c in configs}
    done = store.completed_hashes(suite)
    jobs, skipped = [], 0
    for digest, config in unique.items():
        job = Job(new_run_id(), config, suite)
        if digest in done or not store.claim(job.pending_record(), lease):
            skipped += 1
            continue
        jobs.append(job)
    return jobs, skipped


def finished_line(record: RunRecord, done: int, total: int) -> str:
    """``[3/186] completed 1a2b3c cross_segment_recall sliding_window+knn accuracy 0.998,
    750 steps, 108 s``: one finished run, as the bench's log shows it."""
    metrics = record.metrics or {}
    parts = [f"accuracy {metrics['accuracy']:.3f}"] if isinstance(metrics.get("accuracy"), float) else []
    if metrics.get("steps") is not None:
        parts.append(f"{metrics['steps']} steps")
    if record.wall_seconds is not None:
        parts.append(f"{record.wall_seconds:.0f} s")
    if record.error and record.error.strip():
        parts.append(record.error.strip().splitlines()[0][:120])
    head = f"[{done}/{total}] {record.status} {record.run_id} {record.task} {'+'.join(record.layers)}"
    return f"{head} {', '.join(parts)}".rstrip()


def run_bench(
    suite: str,
    store: ResultsStore,
    executor: Executor,
    *,
    progress: bool = True,
    overrides: list[str] = (),
    inspect_after: bool = False,
) -> BenchSummary:
    """Run every not-yet-finished run of ``suite`` on ``executor``; the driver writes records.

    With ``inspect_after`` the suite's completed recall runs not yet inspected are then
    inspected from their checkpoints (``memzoo.sweep.inspections``), in this process."""
    start = time.perf_counter()
    lease = Lease()
    try:
        with Heartbeat(store, lease):
            summary = _run_claimed(suite, store, executor, progress, overrides, lease, start)
    finally:
        with contextlib.suppress(MemzooError):  # unreleased claims lapse after lease.ttl anyway
            store.release(lease)  # rows still "running" now (an error) are reclaimable
    if inspect_after:
        pending = to_inspect(store.runs(suite=suite, with_curves=False))
        summary.inspection = inspect_runs(store, [r.run_id for r in pending], progress=progress)
        summary.wall_seconds = time.perf_counter() - start
    return summary


def _run_claimed(suite, store, executor, progress, overrides, lease, start) -> BenchSummary:
    jobs, skipped = plan_jobs(suite, store, overrides, lease)
    summary = BenchSummary(suite=suite, total=len(jobs) + skipped, skipped=skipped)
    bar = Progress(
        TextColumn(f"[bold]{suite}[/] ({executor.name})"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not progress,
    )

    def counts() -> str:
        done = summary.completed + summary.failed + summary.diverged
        queued = len(jobs) - done - summary.running
        return (
            f"completed {summary.completed}  running {summary.running}  queued {queued}  "
            f"failed {summary.failed}  diverged {summary.diverged}  skipped {skipped}"
        )

    def on_start(job: Job) -> None:
        store.mark_started([job.run_id])
        summary.running += 1
        bar.update(task_id, counts=counts())

    def on_record(record: RunRecord) -> None:
        store.write_record(record)
        summary.run_ids.append(record.run_id)
        if record.status == "completed":
            summary.completed += 1
        elif record.status == "diverged":
            summary.diverged += 1
        else:
            summary.failed += 1
        summary.running = max(0, summary.running - 1)
        bar.update(task_id, advance=1, counts=counts())
        if progress:  # a line per run: a log (not a terminal) shows the bar only at the end
            bar.console.print(
                finished_line(record, len(summary.run_ids), len(jobs)), markup=False, highlight=False
            )

    with bar:
        task_id = bar.add_task(suite, total=len(jobs), counts=counts())
        try:
            if _accepts_on_start(executor):
                executor.run(jobs, on_record, on_start=on_start)
            else:  # an executor without start notices: started = not finished
                store.mark_started(job.run_id for job in jobs)
                summary.running = len(jobs)
                executor.run(jobs, on_record)
        except KeyboardInterrupt:
            _mark_interrupted(store, suite, jobs)
            raise
    summary.wall_seconds = time.perf_counter() - start
    return summary


def _accepts_on_start(executor: Executor) -> bool:
    try:
        return "on_start" in inspect.signature(executor.run).parameters
    except (TypeError, ValueError):
        return False


def _mark_interrupted(store: ResultsStore, suite: str, jobs: list[Job]) -> None:
    """Store the runs of ``jobs`` an interrupted driver did not finish as ``failed`` (re-run
    next time). The store decides which: rows still ``running`` or ``queued``, so a record
    whose write landed just before the interrupt, or was rolled back by it, is judged correctly."""
    unfinished = ("running", "queued")
    running = {r.run_id for r in store.runs(suite=suite, with_curves=False) if r.status in unfinished}
    for job in jobs:
        if job.run_id not in running:
            continue
        record = job.pending_record()
        record.conclude("failed", "interrupted: the benchmark was stopped before this run finished")
        store.write_record(record)
