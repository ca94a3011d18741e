"""The ``memzoo`` command. Each sub-command lives in its own module and calls the library.

Any ``MemzooError`` (bad user input) becomes one line on stderr and exit code 2; so does
running out of memory (sizes too large for the machine, past the estimate of
``memzoo.train.sizes``). Any other exception that escapes a training run is one line and exit
code 1 (``memzoo.cli.train_cmd``), and so is an ``OSError`` from any command (a full disk, a
read-only mount): the file and the problem, never a traceback unless ``MEMZOO_DEBUG=1``.
"""

from __future__ import annotations

import sys

import typer

from memzoo.cli import (  # noqa: F401  (registers)
    bench_cmd,
    export_cmd,
    hf_cmd,
    inspect_cmd,
    layers_cmd,
    profile_cmd,
    speed_cmd,
    tasks_cmd,
    train_cmd,
    translate_cmd,
)
from memzoo.cli.app import DEBUG_ENV, app, debugging, fail, out_of_memory  # noqa: F401  (fail: re-exported)
from memzoo.errors import MemzooError, first_line
from memzoo.files import os_problem


@app.callback()
def _root() -> None:
    """memzoo: build, measure and compare the memory of sequence models."""


def main() -> None:
    """Entry point: user errors become one line and exit code 2, without a traceback.

    Usage errors (unknown option, missing argument) are handled by typer itself (exit 2).
    """
    try:
        app()
    except MemzooError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)
    except (MemoryError, RuntimeError) as err:  # torch.OutOfMemoryError is a RuntimeError
        if not out_of_memory(err):
            raise
        typer.echo(f"error: out of memory ({first_line(err)}); lower the sizes of the run", err=True)
        sys.exit(2)
    except OSError as err:  # the machine (a disk, a mount, a permission), not the input: exit 1
        if debugging():
            raise
        where = f"{str(err.filename)!r}: " if err.filename else ""
        typer.echo(f"error: {where}{os_problem(err)} (rerun with {DEBUG_ENV}=1 for the traceback)", err=True)
        sys.exit(1)
