"""``memzoo inspect``: look inside trained memories (``memzoo.inspect``).

Stored runs (by id, or every completed recall run of a suite) are inspected from their
checkpoints and the inspection kept in the store, where ``memzoo report`` shows it; a bare
checkpoint folder is inspected and printed (``--out`` writes the JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from memzoo.cli.app import app, fail
from memzoo.cli.bench_cmd import damaged_rows_as_lines, existing_store
from memzoo.files import check_output_file, write_file
from memzoo.inspect import CURVES, inspect_checkpoint
from memzoo.results import DEFAULT_DB
from memzoo.sweep.inspections import inspect_runs, to_inspect


def _curves(names: str) -> tuple[str, ...]:
    chosen = tuple(n.strip() for n in names.split(",") if n.strip())
    unknown = [n for n in chosen if n not in CURVES]
    if unknown or not chosen:
        fail(f"--curves {names!r}: choose from {', '.join(CURVES)} (comma-separated)")
    return chosen


def show(inspection: dict, title: str) -> None:
    """The curves of one inspection as a table (x: accuracy), and its layer views."""
    console = Console()
    table = Table(title=f"{title}: recall (state {inspection.get('state_bytes', '?'):,} bytes per sequence)")
    table.add_column("curve")
    table.add_column("x")
    table.add_column("accuracy by x")
    for name, curve in inspection["curves"].items():
        cells = "  ".join(f"{p['x']}:{p['accuracy']:.2f}" for p in curve["points"])
        table.add_row(name, curve["x_label"], cells)
    console.print(table)
    layers = inspection["layers"]
    for label, gates in layers["gates"].items():
        for gate, by_role in gates.items():
            roles = "  ".join(f"{role} {value:.3f}" for role, value in by_role.items())
            console.print(f"{label} {gate}: {roles}")
    for label, mass in layers["attention"].items():
        console.print(
            f"{label} attention at the query: " + "  ".join(f"{k} {v:.3f}" for k, v in mass.items())
        )
    if layers["no_view"]:
        console.print(f"no gate or attention view: {', '.join(layers['no_view'])}")


@app.command("inspect")
def inspect_command(
    run_ids: list[str] = typer.Argument(None, help="Stored run ids to inspect."),
    suite: str | None = typer.Option(None, "--suite", help="Every completed recall run of this suite."),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="A checkpoint folder instead."),
    out: Path | None = typer.Option(
        None, "--out", help="With --checkpoint: write the inspection (JSON) here."
    ),
    db: str = typer.Option(DEFAULT_DB, "--db", help="Results database."),
    samples: int = typer.Option(128, "--samples", min=8, help="Probe sequences per curve point."),
    curves: str = typer.Option(",".join(CURVES), "--curves", help="Comma-separated: " + ", ".join(CURVES)),
    again: bool = typer.Option(False, "--again", help="With --suite: also runs inspected before."),
    trust_code: bool = typer.Option(
        False, "--trust-code", help="Allow importing a user layer the run names."
    ),
) -> None:
    """Forgetting, interference, capacity and overwrite curves of a trained recall model, and
    the write gates and attention of its layers."""
    options = {"samples": samples, "curves": _curves(curves)}
    if checkpoint is not None:
        if run_ids or suite:
            fail("--checkpoint inspects one folder: give no run ids or --suite with it")
        target = check_output_file(out, "--out") if out is not None else None
        inspection = inspect_checkpoint(checkpoint, trust_code=trust_code, **options)
        if target is not None:
            write_file(target, json.dumps(inspection, indent=1))
        show(inspection, str(checkpoint))
        return
    if not run_ids and not suite:
        fail("name run ids, --suite NAME, or --checkpoint DIR")
    store = existing_store(db)
    with damaged_rows_as_lines():
        ids = list(run_ids or [])
        if suite:
            ids += [r.run_id for r in to_inspect(store.runs(suite=suite, with_curves=False), again=again)]
    summary = inspect_runs(store, ids, trust_code=trust_code, **options)
    for run_id in summary.inspected:
        show(store.get(run_id).metrics["inspection"], run_id)
    for run_id, why in summary.skipped.items():
        typer.echo(f"not inspected: {run_id}: {why}", err=True)
    typer.echo(f"{len(summary.inspected)} inspected, {len(summary.skipped)} skipped; stored in {db}")
    if run_ids and summary.skipped:
        raise typer.Exit(code=2)
