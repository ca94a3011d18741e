"""The ``speed`` table of the results store: one row per speed measurement (``memzoo speed``).

:class:`SpeedRows` is mixed into :class:`memzoo.results.store.ResultsStore`; it needs the
store's ``_write``/``_connect`` transactions and ``_skipped`` warning.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from memzoo.errors import MemzooError
from memzoo.results.rows import DamagedColumn, json_object

# Speed-row keys: required first, then optional; anything else is refused.
SPEED_REQUIRED = ("layer", "seq_len", "mode", "tokens_per_s")
SPEED_OPTIONAL = ("created_at", "machine", "ratio_vs_reference", "state_bytes", "mfu", "extra")
SPEED_COLUMNS = SPEED_REQUIRED + SPEED_OPTIONAL


class SpeedRows:
    """``add_speed_rows`` and ``speed_rows`` of the results store."""

    def add_speed_rows(self, rows: Iterable[dict[str, Any]]) -> int:
        """Append speed measurements (keys: :data:`SPEED_COLUMNS`); returns how many.

        ``layer``, ``seq_len``, ``mode`` and ``tokens_per_s`` are required; ``extra`` is a
        JSON-able dict; ``created_at`` defaults to now. Unknown keys raise MemzooError."""
        values = []
        for row in rows:
            unknown = sorted(set(row) - set(SPEED_COLUMNS))
            missing = [k for k in SPEED_REQUIRED if row.get(k) is None]
            if unknown or missing:
                raise MemzooError(
                    f"speed row {row!r}: unknown keys {unknown}, missing keys {missing}; "
                    f"allowed keys: {', '.join(SPEED_COLUMNS)}"
                )
            full = {**dict.fromkeys(SPEED_OPTIONAL), **row}
            full["created_at"] = full["created_at"] or time.time()
            full["extra"] = json.dumps(full["extra"] or {}, default=str)
            values.append(tuple(full[k] for k in SPEED_COLUMNS))
        with self._write() as conn:
            conn.executemany(
                f"INSERT INTO speed ({', '.join(SPEED_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(SPEED_COLUMNS))})",
                values,
            )
        return len(values)

    def speed_rows(self) -> list[dict[str, Any]]:
        """Every speed row as a dict (``id`` plus :data:`SPEED_COLUMNS`), oldest first; a row
        whose ``extra`` is not a JSON object is skipped with a :class:`DamagedRowWarning`."""
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(f"SELECT id, {', '.join(SPEED_COLUMNS)} FROM speed ORDER BY id")
            out = [dict(r) for r in rows]
        kept = []
        for r in out:
            try:
                r["extra"] = json_object("extra", r["extra"])
            except DamagedColumn as err:
                self._skipped(f"speed row {r['id']}", err)
                continue
            kept.append(r)
        return kept
