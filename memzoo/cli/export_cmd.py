"""``memzoo export``: send runs already in the results store to an experiment tracker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from memzoo.cli.app import app, fail
from memzoo.cli.bench_cmd import damaged_rows_as_lines, existing_store
from memzoo.errors import MemzooError
from memzoo.results import DEFAULT_DB, RunRecord
from memzoo.trackers import TRACKER_NAMES, export_runs
from memzoo.train.run_ids import run_folder

# Rows a live process may still change: exported once they end.
_LIVE = ("running", "queued")


def run_as_dict(record: RunRecord) -> dict[str, Any]:
    """``record`` as the plain dict :func:`memzoo.trackers.export_runs` takes, with the
    folder of its checkpoint (``<train.out_dir>/<run_id>``) when that folder exists."""
    run = record.to_dict()
    train = record.config.get("train")
    if isinstance(train, dict) and train.get("checkpoint", True):
        try:
            folder = run_folder(str(train.get("out_dir", "results/runs")), record.run_id)
        except MemzooError:  # a stored id that cannot name a folder, an out_dir that escapes
            folder = None
        if folder is not None and folder.is_dir():
            run["checkpoint_path"] = str(folder.absolute())
    return run


@app.command("export")
def export_command(
    to: str = typer.Option(..., "--to", help="The tracker: " + ", ".join(TRACKER_NAMES) + "."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="Results database to read."),
    tracker_dir: str = typer.Option(
        "results/trackers", "--tracker-dir", help="Where the tracker writes (as train.tracker_dir)."
    ),
    suite: str | None = typer.Option(None, "--suite", help="Only the runs of this suite."),
    runs: list[str] | None = typer.Option(None, "--run", help="Only this run id (repeatable)."),
) -> None:
    """Send stored runs (config, curve, final metrics, state bytes, checkpoint path) to
    TensorBoard, MLflow or W&B, offline, under --tracker-dir. Runs the tracker already holds
    are skipped, so exporting again sends only new runs; runs still going on wait.

    Needs: pip install 'memzoo[trackers]'.
    """
    if to not in TRACKER_NAMES:
        fail(f"unknown tracker {to!r} for --to; trackers: {', '.join(TRACKER_NAMES)}")
    store = existing_store(db)
    with damaged_rows_as_lines():
        records = store.runs(suite=suite)
    if runs:
        missing = sorted(set(runs) - {r.run_id for r in records})
        if missing:
            where = f" of suite {suite!r}" if suite is not None else ""
            fail(f"no run {missing[0]!r}{where} in {db}")
        records = [r for r in records if r.run_id in set(runs)]
    live = [r for r in records if r.status in _LIVE]
    ended = [run_as_dict(r) for r in records if r.status not in _LIVE]

    def line_per_run(run_id: str, outcome: str) -> None:
        typer.echo(f"{to}: {run_id} {outcome}", err=True)

    summary = export_runs(ended, to, tracker_dir, on_run=line_per_run)
    waiting = f", {len(live)} still running (not sent)" if live else ""
    typer.echo(f"{summary.line()}{waiting} -> {Path(summary.folder)}")
    if summary.failed:
        raise typer.Exit(code=1)
