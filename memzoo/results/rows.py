"""Decoding stored rows: the JSON columns of the results store read back and checked.

A row written by memzoo always decodes; one damaged by hand or by another tool (a ``config``
that is not JSON, ``metrics`` that is a list, ``layers`` that holds numbers) raises
:class:`DamagedColumn`, which the store turns into a :class:`DamagedRowWarning` naming the
database, the row and the column, and skips that row.
"""

from __future__ import annotations


from collections.abc import Mapping
from typing import Any

from memzoo.parsing import load_json_text
from memzoo.results.record import RunRecord

# Run columns that hold a number or NULL (what readers format as numbers).
_NUMBER_COLUMNS = ("started_at", "ended_at", "wall_seconds", "params", "state_bytes")


class DamagedRowWarning(UserWarning):
    """A row of the results store could not be read and was skipped; the message names the
    database file, the row (run id, epoch or speed row id) and the damaged column."""


class DamagedColumn(ValueError):
    """Column ``column`` of a stored row holds something memzoo never writes there."""

    def __init__(self, column: str, problem: str):
        super().__init__(f"its {column} {problem}")
        self.column = column


def json_object(column: str, text: Any) -> dict[str, Any]:
    """The JSON object stored as ``text`` in ``column``; DamagedColumn if it is not one."""
    value = _json(column, text)
    if not isinstance(value, dict):
        raise DamagedColumn(column, f"is not a JSON object (a JSON {_kind(value)})")
    return value


def decode_run(row: Mapping[str, Any], columns: tuple[str, ...], curve: list[dict[str, Any]]) -> RunRecord:
    """The record of one ``runs`` row (``columns`` of it) with ``curve``; DamagedColumn when a
    JSON column does not decode to its shape (``layers``: a list of strings; ``config``,
    ``metrics``: objects) or a number column holds something else."""
    fields = {c: row[c] for c in columns}
    layers = _json("layers", fields["layers"])
    if not isinstance(layers, list) or not all(isinstance(name, str) for name in layers):
        raise DamagedColumn("layers", f"is not a list of layer names: {fields['layers']!r:.60}")
    fields["layers"] = layers
    fields["config"] = json_object("config", fields["config"])
    fields["metrics"] = json_object("metrics", fields["metrics"])
    for column in _NUMBER_COLUMNS:
        value = fields[column]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise DamagedColumn(column, f"is not a number ({value!r:.40})")
    return RunRecord(**fields, curve=curve)


def _json(column: str, text: Any) -> Any:
    try:
        return load_json_text(text, column)
    except (
        TypeError,
        ValueError,
    ) as err:  # JSONDecodeError, ConfigError (too deep): ValueErrors; NULL: TypeError
        raise DamagedColumn(column, f"is not valid JSON ({err})") from None


def _kind(value: Any) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")
