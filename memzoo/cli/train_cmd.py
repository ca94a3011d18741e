"""``memzoo train``: one training run, stored in the results database."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from memzoo.cli.app import app
from memzoo.errors import ConfigError
from memzoo.results import DEFAULT_DB, ResultsStore
from memzoo.train import build_config, fit, load_config_file
from memzoo.train.distributed import is_main_process
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
) -> None:
    """Train one model on one task and store the run (data-parallel under torchrun)."""
    # Under torchrun only rank 0 writes the store; the others read it only to resume.
    main_rank = is_main_process()
    store = None if no_store or not (main_rank or resume) else ResultsStore(db)
    with _stop_on_sigterm():
        if resume:
            if config or task or layer:
                raise ConfigError("--resume takes the run's stored config; give only key=value overrides")
            result = resume_run(resume, store=store, overrides=list(overrides or []))
        else:
            base = load_config_file(config) if config else {}
            cfg = build_config(base, overrides_from_shortcuts(task, layer, depth) + list(overrides or []))
            result = fit(cfg, store=store)
    if not main_rank:
        return  # rank 0 reports the run
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
        for name in ("accuracy", "f1", "mae", "rmse", "chrf")
        if isinstance(metrics.get(name), (int, float))
    )
    console.print(
        f"[bold]{record.run_id}[/] {record.status}: {scores or 'no metrics'} "
        f"after {metrics.get('epochs')} epoch(s), {record.wall_seconds or 0:.1f} s, "
        f"{record.params or 0:,} params, {record.state_bytes or 0:,} state bytes"
    )
    if record.error:
        console.print(f"[red]{record.error}[/]")
