"""``memzoo profile``: a training run's steps under ``torch.profiler`` (``memzoo.speed.profile``)."""

from __future__ import annotations

from pathlib import Path

import typer

from memzoo.cli.app import app
from memzoo.errors import ConfigError
from memzoo.speed.profile import SORT_KEYS, check_options, profile_training
from memzoo.speed.run_phases import profile_run
from memzoo.train import build_config, load_config_file


@app.command("profile", context_settings={"allow_extra_args": False})
def profile_command(
    overrides: list[str] = typer.Argument(None, help="key=value overrides, as for `memzoo train`."),
    config: Path | None = typer.Option(None, "--config", help="YAML/JSON run config."),
    steps: int = typer.Option(20, "--steps", help="Training steps profiled."),
    warmup: int = typer.Option(3, "--warmup", help="Steps run first, unprofiled."),
    rows: int = typer.Option(10, "--rows", help="Operators in the table."),
    sort: str = typer.Option("self_cpu_time_total", "--sort", help="One of " + ", ".join(SORT_KEYS) + "."),
    trace: Path | None = typer.Option(None, "--trace", help="Write a Chrome trace (chrome://tracing) here."),
    whole_run: bool = typer.Option(
        False,
        "--whole-run",
        help="Run the whole run instead and split its wall time: data, training steps, validation, "
        "test, checkpoints, other.",
    ),
) -> None:
    """Profile the training steps of the run `memzoo train` would make of the same config:
    the top operators, and the share of time in data batching, forward/backward and the
    optimizer step. With --whole-run, the whole run instead, split into its phases. Nothing is
    stored."""
    check_options(steps, warmup, rows, sort, trace)  # before any data is generated
    cfg = build_config(load_config_file(config) if config else {}, list(overrides or []))
    if whole_run:
        if trace is not None:
            raise ConfigError("--trace profiles training steps; it does not go with --whole-run")
        phases = profile_run(cfg)
        typer.echo(phases.table())
        typer.echo(f"run {phases.status} after {phases.steps} steps (nothing stored)")
        return
    result = profile_training(cfg, steps=steps, warmup=warmup, rows=rows, sort=sort, trace=trace)
    typer.echo(result.table)
    per_step = 1000 * result.wall_seconds / result.steps
    typer.echo(
        f"{result.steps} steps on {result.device}: {result.wall_seconds:.3f} s profiled, {per_step:.2f} ms a step"
    )
    for phase, share in result.shares.items():
        typer.echo(f"  {phase:<17} {100 * share:5.1f}%")
    typer.echo(
        f"  {'other':<17} {100 * max(0.0, 1 - sum(result.shares.values())):5.1f}%  (profiler, bookkeeping)"
    )
    if result.trace is not None:
        typer.echo(f"chrome trace: {result.trace}")
