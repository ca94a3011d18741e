"""The ``memzoo`` command. Each sub-command lives in its own module and calls the library.

Any ``MemzooError`` (bad user input) becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from memzoo.errors import MemzooError

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


def _register_commands() -> None:
    # Imported here so that each module can `from memzoo.cli.main import app`.
    from memzoo.cli import (  # noqa: F401
        bench_cmd,
        layers_cmd,
        speed_cmd,
        tasks_cmd,  # noqa: F401
        train_cmd,
        translate_cmd,  # noqa: F401
    )


@app.callback()
def _root() -> None:
    """memzoo: build, measure and compare the memory of sequence models."""


_register_commands()


def main() -> None:
    """Entry point: user errors become one line and exit code 2, without a traceback.

    Usage errors (unknown option, missing argument) are handled by typer itself (exit 2).
    """
    try:
        app()
    except MemzooError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
