"""``memzoo bench``, ``memzoo runs`` and ``memzoo report``: sweeps and their results."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from memzoo.cli.app import app, fail
from memzoo.files import check_output_file
from memzoo.report.html import write_report
from memzoo.results import DEFAULT_DB
from memzoo.results.record import RUN_STATUSES
from memzoo.results.store import DamagedRowWarning, ResultsStore
from memzoo.sweep.executors import LocalExecutor
from memzoo.sweep.ray_executor import RayExecutor
from memzoo.sweep.runner import BenchSummary, run_bench
from memzoo.sweep.suites import suite_names


def suite_configs_check(suite: str) -> None:
    """Refuse an unknown suite before a database or a Ray instance is touched."""
    if suite not in suite_names():
        fail(f"unknown suite {suite!r}; available suites: {', '.join(suite_names())}")


def existing_store(db: str) -> ResultsStore:
    """The results store at ``db``, which must exist (reading never creates a database)."""
    if not Path(db).exists():
        fail(f"no results store at {db}: run a benchmark first (memzoo bench --db {db})")
    return ResultsStore(db)


@contextmanager
def damaged_rows_as_lines() -> Iterator[None]:
    """Each damaged row a read inside skips (a :class:`DamagedRowWarning`) becomes one
    ``warning: ...`` line on stderr, after the block (even one that fails); other warnings
    show as they would."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DamagedRowWarning)
            yield
    finally:
        for w in caught:
            if issubclass(w.category, DamagedRowWarning):
                typer.echo(f"warning: {w.message}", err=True)
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)


@app.command("bench")
def bench_command(
    overrides: list[str] | None = typer.Argument(
        None, help="Dotted key=value settings applied to every run of the suite, e.g. train.max_seconds=120."
    ),
    suite: str = typer.Option("quick", "--suite", help="Suite name: " + ", ".join(suite_names())),
    workers: int = typer.Option(1, "--workers", help="Local worker processes (without --ray)."),
    ray: bool = typer.Option(
        False,
        "--ray",
        help="Run each run as a Ray task: on a local Ray instance started for this bench "
        "(all CPUs), or on the cluster given by --ray-address. Needs: pip install 'memzoo\\[ray]'.",
    ),
    ray_address: str | None = typer.Option(
        None,
        "--ray-address",
        metavar="ADDRESS",
        help="Join this Ray cluster (implies --ray): HOST:PORT of its `ray start --head`, "
        "or 'auto' for the cluster running on this machine.",
    ),
    retries: int = typer.Option(
        2, "--retries", min=0, help="Extra attempts for a run that fails, before it is stored as failed."
    ),
    db: str = typer.Option(DEFAULT_DB, "--db", help="Results database."),
    inspect: bool = typer.Option(
        False, "--inspect", help="Then inspect each completed recall run (memzoo inspect) and store it."
    ),
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: a JSON summary."),
) -> None:
    """Run a suite (resuming: finished runs are skipped) and store every run.

    Interrupted (Ctrl-C, a killed process), the same command runs only what did not finish.
    """
    suite_configs_check(suite)
    if ray or ray_address:
        executor = RayExecutor(ray_address, retries=retries)
    else:
        executor = LocalExecutor(workers, retries=retries)
    # Ray is started or joined before the bench claims its runs (a cluster that cannot be
    # reached then leaves the store untouched) and shut down afterwards if it was started.
    with executor if isinstance(executor, AbstractContextManager) else nullcontext():
        store = ResultsStore(db)
        try:
            summary = run_bench(
                suite, store, executor, progress=not as_json, overrides=overrides or [], inspect_after=inspect
            )
        except KeyboardInterrupt:
            typer.echo(
                "interrupted: unfinished runs are stored as failed; run the same command again to resume",
                err=True,
            )
            raise typer.Exit(code=130) from None
    print_summary(summary, as_json)


def print_summary(summary: BenchSummary, as_json: bool) -> None:
    """The bench's last line (``--json``: the whole summary as JSON); runs it could not
    inspect, one line each on stderr."""
    line = (
        f"suite {summary.suite}: {summary.completed} completed, {summary.failed} failed, "
        f"{summary.diverged} diverged, {summary.skipped} already done, "
        f"{summary.wall_seconds:.1f} s"
    )
    if summary.inspection is not None:
        line += f"; {len(summary.inspection.inspected)} inspected"
        for run_id, why in summary.inspection.skipped.items():
            typer.echo(f"not inspected: {run_id}: {why}", err=True)
    typer.echo(json.dumps(dataclasses.asdict(summary)) if as_json else line)


@app.command("runs")
def runs_command(
    task: str | None = typer.Option(None, "--task"),
    layer: str | None = typer.Option(None, "--layer"),
    status: str | None = typer.Option(None, "--status"),
    suite: str | None = typer.Option(None, "--suite"),
    db: str = typer.Option(DEFAULT_DB, "--db", help="Results database."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List stored runs, optionally filtered (a run whose process died shows as interrupted;
    one a benchmark claimed but has not started, as queued)."""
    if status is not None and status not in RUN_STATUSES:
        fail(f"--status {status!r} is not a run status; use one of {', '.join(RUN_STATUSES)}")
    with damaged_rows_as_lines():
        records = existing_store(db).runs(
            task=task, layer=layer, status=status, suite=suite, with_curves=False
        )
    if as_json:
        for r in records:
            typer.echo(json.dumps({k: v for k, v in r.to_dict().items() if k != "curve"}))
        return
    table = Table(title=f"{len(records)} run(s) in {db}")
    for column in (
        "run id",
        "suite",
        "task",
        "layers",
        "status",
        "accuracy",
        "state bytes",
        "params",
        "seconds",
    ):
        table.add_column(column)
    for r in records:
        acc = r.metrics.get("accuracy")
        table.add_row(
            r.run_id,
            r.suite or "",
            r.task,
            "+".join(r.layers),
            r.status,
            f"{acc:.4f}" if isinstance(acc, (int, float)) else "",
            f"{r.state_bytes:,}" if r.state_bytes is not None else "",
            f"{r.params:,}" if r.params is not None else "",
            f"{r.wall_seconds:.1f}" if r.wall_seconds is not None else "",
        )
    Console(width=160).print(table)


@app.command("report")
def report_command(
    db: str = typer.Option(DEFAULT_DB, "--db", help="Results database."),
    out: str = typer.Option("results/report.html", "--out", help="HTML file to write."),
) -> None:
    """Write the self-contained HTML report of every stored run."""
    check_output_file(out, "--out")  # before any work: a bad --out fails at once
    with damaged_rows_as_lines():
        path = write_report(existing_store(db), out)
    typer.echo(f"report written to {path}")
