"""``memzoo tasks``: the registered synthetic memory tasks and their parameters."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from memzoo import tasks as task_registry
from memzoo.cli.app import app


def _parameters_line(parameters: dict) -> str:
    return ", ".join(f"{name}={spec['default']}" for name, spec in parameters.items())


@app.command("tasks")
def tasks_command(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List every task: name, head, description, parameters with their defaults."""
    described = [task_registry.describe(name) for name in task_registry.names()]
    if as_json:
        for entry in described:
            typer.echo(json.dumps(entry))
        return
    table = Table(title="memzoo tasks")
    for column in ("name", "head", "description", "parameters (defaults)"):
        table.add_column(column)
    for entry in described:
        parameters = _parameters_line(entry["parameters"])
        table.add_row(entry["name"], entry["head"], entry["description"], parameters)
    Console(width=160).print(table)
