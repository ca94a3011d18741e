"""The ``memzoo`` command. Each sub-command lives in its own module and calls the library.

Any ``MemzooError`` (bad user input) becomes one line on stderr and exit code 2; so does
running out of memory (sizes too large for the machine, past the estimate of
``memzoo.train.sizes``).
"""

from __future__ import annotations

import sys

import torch
import typer

from memzoo.cli import (  # noqa: F401  (registers)
    bench_cmd,
    layers_cmd,
    profile_cmd,
    speed_cmd,
    tasks_cmd,
    train_cmd,
    translate_cmd,
)
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
    except (MemoryError, torch.OutOfMemoryError) as err:
        typer.echo(f"error: out of memory ({_first_line(err)}); lower the sizes of the run", err=True)
        sys.exit(2)
    except RuntimeError as err:
        if "can't allocate memory" not in str(err) and "out of memory" not in str(err):
            raise
        typer.echo(f"error: out of memory ({_first_line(err)}); lower the sizes of the run", err=True)
        sys.exit(2)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
