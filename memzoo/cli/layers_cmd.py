"""``memzoo layers``: the registered memory layers."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from memzoo import layers as layer_registry
from memzoo.cli.app import app


@app.command("layers")
def layers_command(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List every memory layer: name, kind, family, state growth, description."""
    infos = [layer_registry.info(name) for name in layer_registry.names()]
    if as_json:
        for info in infos:
            typer.echo(json.dumps(info._asdict()))
        return
    table = Table(title="memzoo memory layers")
    for column in ("name", "kind", "family", "state grows", "description"):
        table.add_column(column)
    for info in infos:
        table.add_row(info.name, info.kind, info.family, info.state_growth, info.description)
    Console(width=140).print(table)
