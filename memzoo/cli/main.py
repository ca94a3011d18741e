"""The ``memzoo`` command. Each sub-command lives in its own module and calls the library.

Any ``MemzooError`` (bad user input) becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from memzoo.cli import bench_cmd, layers_cmd, speed_cmd, tasks_cmd, train_cmd, translate_cmd  # noqa: F401  (registers)
from memzoo.cli.app import app, fail  # noqa: F401  (fail: re-exported)
from memzoo.errors import MemzooError


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
