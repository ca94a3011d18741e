"""``memzoo train``: one training run, stored in the results database.

An exception that escapes the run and is neither bad input (a ``MemzooError``: exit code 2)
nor running out of memory — a user layer that raises, or a bug — is one ``error:`` line
naming the run id, the exception's type and first line and where it was raised, with exit
code 1; the run's row is stored ``failed``. ``MEMZOO_DEBUG=1`` lets the exception through with
its traceback.
"""

from __future__ import annotations

import json
import signal
import threading
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from memzoo.cli.app import DEBUG_ENV, app, debugging, out_of_memory
from memzoo.errors import ConfigError, MemzooError, first_line
from memzoo.results import DEFAULT_DB, ResultsStore
from memzoo.train import build_config, fit, load_config_file
from memzoo.train.distributed import is_main_process
from memzoo.train.run_ids import new_run_id
from memzoo.train.run_kinds import resume_run


def overrides_from_shortcuts(task: str | None, layer: str | None, depth: int) -> list[str]:
    """``--task NAME`` -> ``task.name=NAME``; ``--layer NAME`` -> ``model.layers=[NAME]*depth``."""
    items = []
    if task:
        items.append(f"task.name={task}")
    if layer:
        items.append("model.layers=[" + ",".join([layer] * depth) + "]")
    return items


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt(f"terminated by signal {signum}")


@contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C while training, so the run's row is stored ``failed``, not
    left ``running``; the previous handler is put back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def _failure_as_one_line(run: str) -> Iterator[None]:
    """Inside, an exception of run ``run`` that is not bad input nor out of memory becomes one
    line and exit code 1 (see the module); with ``MEMZOO_DEBUG=1`` it goes through unchanged."""
    try:
        yield
    except Exception as err:
        if isinstance(err, MemzooError) or out_of_memory(err) or debugging():
            raise
        where = traceback.extract_tb(err.__traceback__)[-1]
        typer.echo(
            f"error: run {run!r} failed: {type(err).__name__}: {first_line(err)} (raised in "
            f"{where.name}, {where.filename}:{where.lineno}; rerun with {DEBUG_ENV}=1 for the traceback)",
            err=True,
        )
        raise typer.Exit(code=1) from None


@app.command("train", context_settings={"allow_extra_args": False})
def train_command(
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. task.seq_len=128"),
    task: str | None = typer.Option(None, "--task", help="Task name (see `memzoo tasks`)."),
    layer: str | None = typer.Option(None, "--layer", help="Use this layer at every depth."),
    depth: int = typer.Option(2, "--depth", min=1, help="Number of blocks for --layer."),
    config: Path | None = typer.Option(None, "--config", help="YAML/JSON run config."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="Results database."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not write to the database."),
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: one JSON result."),
    resume: str | None = typer.Option(
        None, "--resume", help="Continue this run id (or checkpoint folder) from its last epoch."
    ),
    trust_code: bool = typer.Option(
        False, "--trust-code", help="Let --resume FOLDER import a layer its config names by import path."
    ),
) -> None:
    """Train one model on one task and store the run (data-parallel under torchrun)."""
    # Under torchrun only rank 0 writes the store; the others read it only to resume.
    main_rank = is_main_process()
    store = None if no_store or not (main_rank or resume) else ResultsStore(db)
    with _stop_on_sigterm():
        if resume:
            if config or task or layer:
                raise ConfigError("--resume takes the run's stored config; give only key=value overrides")
            with _failure_as_one_line(resume):
                result = resume_run(
                    resume, store=store, overrides=list(overrides or []), trust_code=trust_code
                )
        else:
            base = load_config_file(config) if config else {}
            cfg = build_config(base, overrides_from_shortcuts(task, layer, depth) + list(overrides or []))
            run_id = new_run_id()  # drawn here, not in fit, so a failure can name it
            with _failure_as_one_line(run_id):
                result = fit(cfg, store=store, run_id=run_id)
    if main_rank:  # rank 0 reports the run
        _report(result, as_json)


def _report(result, as_json: bool) -> None:
    """The run's summary: one JSON line (``--json``) or one rich line (and its error)."""
    record = result.record
    summary = {
        "run_id": record.run_id,
        "status": record.status,
        "metrics": record.metrics,
        "wall_seconds": record.wall_seconds,
        "state_bytes": record.state_bytes,
        "params": record.params,
        "checkpoint": str(result.checkpoint_dir) if result.checkpoint_dir else None,
        "error": record.error,
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    console = Console()
    metrics = record.metrics
    scores = "  ".join(
        f"{name} {metrics[name]:.4f}"
        for name in ("accuracy", "f1", "mae", "rmse", "chrf", "nll_per_step")
        if isinstance(metrics.get(name), (int, float))
    )
    console.print(
        f"[bold]{record.run_id}[/] {record.status}: {scores or 'no metrics'} "
        f"after {metrics.get('epochs')} epoch(s), {record.wall_seconds or 0:.1f} s, "
        f"{record.params or 0:,} params, {record.state_bytes or 0:,} state bytes"
    )
    if record.error:
        console.print(f"[red]{record.error}[/]")
