"""The ``memzoo`` typer application that every sub-command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="memzoo: build, measure and compare the memory of sequence models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2 (bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
