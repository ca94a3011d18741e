"""Reading a user's text files: UTF-8 decoding and CSV/TSV/JSONL records, with clear errors.

Every problem a file can have raises ``memzoo.errors.MemzooError`` whose message starts with
``path:line`` (and ``:column`` where one is known), so the user can open the file at the spot:

- the file is missing, a folder, or empty (nothing but whitespace);
- a byte sequence is not UTF-8 (the message gives the line, the byte column and the byte);
- a CSV/TSV row has a different number of fields than the header (a ragged row);
- a JSONL line is not valid JSON or not an object;
- a requested column is missing (the message lists the columns there are).

Formats follow the file suffix: ``.csv``; ``.tsv`` / ``.tab``; ``.jsonl`` / ``.ndjson`` / ``.json``
(one JSON object per line). CSV uses standard quoting; TSV has no quoting (a tab always
separates fields, quotes are text), as spreadsheet and corpus exports write it.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import NamedTuple

from memzoo.errors import MemzooError
from memzoo.parsing import load_json_text

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


class Record(NamedTuple):
    """One row of a table file: the 1-based line it starts on and its fields by column name."""

    line: int
    fields: dict[str, object]


def read_utf8(path: str | Path) -> str:
    """The text of ``path`` decoded as UTF-8 (a leading byte-order mark is dropped).

    Raises ``MemzooError`` for a missing file, a folder, bytes that are not UTF-8 (naming
    line and byte column) and a file with nothing but whitespace.
    """
    path = Path(path)
    if not path.exists():
        raise MemzooError(f"{path}: file does not exist")
    if not path.is_file():
        raise MemzooError(f"{path}: is not a file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        column = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise MemzooError(
            f"{path}:{line}:{column}: not valid UTF-8 (byte 0x{raw[err.start]:02x}); "
            "save the file with UTF-8 encoding"
        ) from None
    if not text.strip():
        raise MemzooError(f"{path}: file is empty")
    return text


def table_format(path: str | Path) -> str:
    """``"csv"``, ``"tsv"`` or ``"jsonl"`` from the file suffix; an error names the known ones."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise MemzooError(
            f"{path}: unknown file type {suffix or '(no suffix)'!r}; use one of {', '.join(sorted(FORMATS))}"
        )
    return FORMATS[suffix]


def read_records(path: str | Path) -> tuple[list[str], list[Record]]:
    """Column names and the records of a CSV (header row), TSV (header row) or JSONL file.

    Blank lines are skipped. For JSONL the columns are those of the first object.
    """
    fmt = table_format(path)
    text = read_utf8(path)
    if fmt == "jsonl":
        return _read_jsonl(path, text)
    return _read_delimited(path, text, fmt)


def _read_delimited(path, text: str, fmt: str) -> tuple[list[str], list[Record]]:
    # No field is longer than the file: CSV/TSV then take what JSONL takes (csv's own
    # default refuses fields over 131,072 characters).
    csv.field_size_limit(max(csv.field_size_limit(), min(len(text) + 1, 2**31 - 1)))
    if fmt == "csv":
        reader = csv.reader(io.StringIO(text, newline=""))
    else:  # a tab always separates fields: no quoting
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    header: list[str] | None = None
    records: list[Record] = []
    try:
        for row in reader:
            line = reader.line_num  # the line the row ends on (quoted fields may span lines)
            if not row or all(not cell.strip() for cell in row):
                continue
            if header is None:
                header = [cell.strip() for cell in row]
                _check_header(path, line, header)
                continue
            if len(row) != len(header):
                raise MemzooError(
                    f"{path}:{line}: row has {len(row)} field(s), the header has {len(header)} "
                    f"({', '.join(header)}); a ragged row"
                    + ("; quote fields that contain commas" if fmt == "csv" else "")
                )
            records.append(Record(line, dict(zip(header, row))))
    except csv.Error as err:
        raise MemzooError(f"{path}:{reader.line_num}: malformed {fmt.upper()}: {err}") from None
    if not records:
        raise MemzooError(f"{path}: no data rows below the header")
    return header, records


def _check_header(path, line: int, header: list[str]) -> None:
    if any(not name for name in header):
        raise MemzooError(f"{path}:{line}: the header has an empty column name: {header}")
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise MemzooError(f"{path}:{line}: the header repeats column(s) {duplicates}")


def _read_jsonl(path, text: str) -> tuple[list[str], list[Record]]:
    columns: list[str] | None = None
    records: list[Record] = []
    for line, content in enumerate(text.splitlines(), start=1):
        if not content.strip():
            continue
        try:
            obj = load_json_text(content, f"{path}:{line}")
        except json.JSONDecodeError as err:
            raise MemzooError(f"{path}:{line}:{err.colno}: invalid JSON: {err.msg}") from None
        if not isinstance(obj, dict):
            raise MemzooError(f"{path}:{line}: expected one JSON object per line, got {type(obj).__name__}")
        if columns is None:
            columns = list(obj)
        records.append(Record(line, obj))
    return columns or [], records


def column_values(path, columns: list[str], records: list[Record], name: str) -> list[str]:
    """The values of column ``name`` as text, one per record.

    Raises ``MemzooError`` if the column is missing (listing the columns there are), or a
    record lacks it, holds null or a nested value (naming the line).
    """
    if name not in columns:
        raise MemzooError(
            f"{path}: no column {name!r}; the file has columns: {', '.join(columns) or '(none)'}"
        )
    values = []
    for record in records:
        if name not in record.fields:
            raise MemzooError(f"{path}:{record.line}: the record has no {name!r} field")
        value = record.fields[name]
        if value is None or isinstance(value, (dict, list)):
            raise MemzooError(f"{path}:{record.line}: field {name!r} must be text or a number, got {value!r}")
        values.append(value if isinstance(value, str) else json.dumps(value))
    return values
