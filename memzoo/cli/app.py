"""The ``memzoo`` typer application that every sub-command module registers on."""

from __future__ import annotations

import os

import torch
import typer

app = typer.Typer(
    help="memzoo: build, measure and compare the memory of sequence models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


DEBUG_ENV = "MEMZOO_DEBUG"  # =1: failures keep their traceback instead of one line


def debugging() -> bool:
    """Whether the user asked for tracebacks (``MEMZOO_DEBUG=1``)."""
    return os.environ.get(DEBUG_ENV) == "1"


def fail(message: str) -> None:
    """Print a one-line error and exit with code 2 (bad input)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is the machine (or GPU) running out of memory."""
    if isinstance(err, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(err, RuntimeError) and (
        "can't allocate memory" in str(err) or "out of memory" in str(err)
    )
