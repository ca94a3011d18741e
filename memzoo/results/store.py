"""The results store: every benchmark run in one SQLite file that the report reads.

Tables (schema version ``SCHEMA_VERSION``, kept in ``memzoo_meta``; see ``store_db``):

- ``runs``: one row per :class:`~memzoo.results.record.RunRecord`; ``layers``, ``config``
  and ``metrics`` are JSON text (extra metrics such as retention live in ``metrics``).
  Indexed on ``(suite, config_hash)`` for resuming a benchmark.
- ``curves``: one row per (run, epoch); ``metrics`` is the whole per-epoch dict as JSON.
- ``speed``: one row per speed measurement (see :data:`SPEED_COLUMNS`).

Several processes may write at once (each operation is one transaction on a fresh
connection, waiting while another process writes); nothing is lost.

Typical life of a run in a benchmark driver::

    store = ResultsStore("results/memzoo.db")
    store.mark_interrupted(suite)          # rows left "running" by a killed benchmark
    if store.claim(record):                # False: this config already finished
        ...                                # train; store.add_epoch(run_id, e, {...})
        store.write_record(finished_record)
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memzoo.results.record import RUN_STATUSES, RunRecord
from memzoo.results.store_db import SCHEMA_VERSION, SqliteFile
from memzoo.errors import MemzooError

__all__ = ["DEFAULT_DB", "FINAL_STATUSES", "Lease", "RESULT_STATUSES", "SCHEMA_VERSION", "SPEED_COLUMNS", "ResultsStore"]

DEFAULT_DB = "results/memzoo.db"  # where every command reads and writes runs unless told

# A run with one of these statuses ran to its end: resuming a benchmark skips it.
FINAL_STATUSES = ("completed", "diverged", "truncated")
# Runs whose numbers enter result tables: a run cut short by its wall-time cap ("truncated")
# measured the machine, not the model, and is only listed as such.
RESULT_STATUSES = ("completed", "diverged")
# Speed-row keys: required first, then optional; anything else is refused.
SPEED_REQUIRED = ("layer", "seq_len", "mode", "tokens_per_s")
SPEED_OPTIONAL = ("created_at", "machine", "ratio_vs_reference", "state_bytes", "mfu", "extra")
SPEED_COLUMNS = SPEED_REQUIRED + SPEED_OPTIONAL

_RUN_COLUMNS = (
    "run_id",
    "suite",
    "task",
    "layers",
    "config",
    "config_hash",
    "status",
    "started_at",
    "ended_at",
    "device",
    "git_rev",
    "params",
    "state_bytes",
    "metrics",
    "wall_seconds",
    "error",
)
_JSON_RUN_COLUMNS = ("layers", "config", "metrics")
_UPSERT_RUN = (
    f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(_RUN_COLUMNS))})"
    f" ON CONFLICT (run_id) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in _RUN_COLUMNS[1:])
)


# Which benchmark holds a running row, until when. Created on first use (no schema change:
# a database without it simply has no live claims).
_CLAIMS_TABLE = (
    "CREATE TABLE IF NOT EXISTS claims (run_id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
    "host TEXT NOT NULL, pid INTEGER NOT NULL, expires_at REAL NOT NULL)"
)


@dataclass(frozen=True)
class Lease:
    """A benchmark driver's hold on the runs it claimed: its host and process, and an expiry
    that the driver pushes back (:meth:`ResultsStore.renew`) while it works.

    A claim is live while it has not expired and, on this host, its process still runs. So a
    driver killed outright (``kill -9``) frees its runs at once for a driver on the same
    machine, and after ``ttl`` seconds for one elsewhere."""

    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    ttl: float = 120.0

    @staticmethod
    def alive(host: str, pid: int, expires_at: float) -> bool:
        if expires_at <= time.time():
            return False
        return host != socket.gethostname() or _process_running(int(pid))


def _process_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (a zombie, killed but not reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _dumps(value: Any) -> str:
    # default=str mirrors config_hash: a value JSON cannot hold is stored as its text.
    return json.dumps(value, default=str)


class ResultsStore(SqliteFile):
    """Runs, learning curves and speed rows in one SQLite file.

    Args:
        path: the database file; its parent folder and the schema are created on first use.
        timeout: seconds a write waits for another process's write lock before failing.

    Raises:
        MemzooError: ``path`` is a folder, not a SQLite file, another application's
            database, a newer memzoo schema, or corrupt. The file is left untouched.
    """

    def __init__(self, path: str | Path = DEFAULT_DB, *, timeout: float = 60.0):
        super().__init__(path, timeout=timeout)

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.path)!r})"

    # ---------------------------------------------------------------- runs: writes
    def start_run(self, record: RunRecord) -> None:
        """Insert ``record`` with status ``running`` (and its curve, usually empty).

        Raises MemzooError when a run with this id is already stored."""
        row = self._row(record, status="running")
        with self._write() as conn:
            try:
                conn.execute(
                    f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(row))})",
                    row,
                )
            except sqlite3.IntegrityError as err:
                raise MemzooError(f"run id {record.run_id!r} is already in {self.path}") from err
            self._put_curve(conn, record)

    def claim(self, record: RunRecord, lease: Lease | None = None) -> bool:
        """Start ``record`` unless its config already finished in the same suite, or another
        live benchmark holds it.

        Rows with the same ``(suite, config_hash)`` that did not finish (``running`` rows
        left by a killed process, ``failed`` rows) are deleted with their curves in the same
        transaction, so a resumed benchmark replaces them instead of adding duplicates.
        Returns False (and writes nothing) when a ``completed``/``diverged``/``truncated``
        row exists, or a ``running`` row whose lease is live (see :class:`Lease`): two
        benchmarks of one suite on one database then share the work, each config run once.
        With ``lease``, the new row is held under it until :meth:`release`."""
        row = self._row(record, status="running")
        with self._write() as conn:
            conn.execute(_CLAIMS_TABLE)
            finished = conn.execute(
                "SELECT 1 FROM runs WHERE suite IS ? AND config_hash = ? AND status IN "
                f"({', '.join('?' * len(FINAL_STATUSES))}) LIMIT 1",
                (record.suite, record.config_hash, *FINAL_STATUSES),
            ).fetchone()
            if finished:
                return False
            held = conn.execute(
                "SELECT c.host, c.pid, c.expires_at FROM runs r JOIN claims c ON c.run_id = r.run_id "
                "WHERE r.suite IS ? AND r.config_hash = ? AND r.status = 'running'",
                (record.suite, record.config_hash),
            ).fetchall()
            if any(Lease.alive(*h) for h in held):
                return False
            stale = "SELECT run_id FROM runs WHERE (suite IS ? AND config_hash = ?) OR run_id = ?"
            args = (record.suite, record.config_hash, record.run_id)
            conn.execute(f"DELETE FROM claims WHERE run_id IN ({stale})", args)
            conn.execute("DELETE FROM runs WHERE (suite IS ? AND config_hash = ?) OR run_id = ?", args)
            conn.execute(_UPSERT_RUN, row)
            self._put_curve(conn, record)
            if lease is not None:
                conn.execute(
                    "INSERT INTO claims (run_id, owner, host, pid, expires_at) VALUES (?, ?, ?, ?, ?)",
                    (record.run_id, lease.owner, lease.host, lease.pid, time.time() + lease.ttl),
                )
        return True

    def renew(self, lease: Lease) -> int:
        """Push back the expiry of every claim held under ``lease``; how many there are."""
        with self._write() as conn:
            conn.execute(_CLAIMS_TABLE)
            return conn.execute(
                "UPDATE claims SET expires_at = ? WHERE owner = ?", (time.time() + lease.ttl, lease.owner)
            ).rowcount

    def release(self, lease: Lease) -> None:
        """Drop the claims of ``lease`` (its rows still ``running`` become stale: reclaimable)."""
        with self._write() as conn:
            conn.execute(_CLAIMS_TABLE)
            conn.execute("DELETE FROM claims WHERE owner = ?", (lease.owner,))

    def add_epoch(self, run_id: str, epoch: int, metrics: dict[str, Any]) -> None:
        """Store (or replace) one epoch of a run's curve as ``{"epoch": epoch, **metrics}``."""
        point = {"epoch": int(epoch), **{k: v for k, v in metrics.items() if k != "epoch"}}
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO curves (run_id, epoch, metrics) VALUES (?, ?, ?)",
                    (run_id, int(epoch), _dumps(point)),
                )
            except sqlite3.IntegrityError as err:
                raise MemzooError(f"no run {run_id!r} in {self.path}; start_run first") from err

    def write_record(self, record: RunRecord) -> None:
        """Insert or replace the whole record, its curve included, in one transaction."""
        row = self._row(record)
        with self._write() as conn:
            conn.execute(_UPSERT_RUN, row)
            conn.execute("DELETE FROM curves WHERE run_id = ?", (record.run_id,))
            self._put_curve(conn, record)

    finish_run = write_record

    def mark_interrupted(self, suite: str | None = None) -> list[str]:
        """Mark every ``running`` run (of ``suite``, if given) as ``failed`` (interrupted).

        Call it when no benchmark process is alive: a ``running`` row then belongs to a
        process that was killed. Returns the run ids it changed."""
        query = (
            "SELECT r.run_id, c.host, c.pid, c.expires_at FROM runs r "
            "LEFT JOIN claims c ON c.run_id = r.run_id WHERE r.status = 'running'"
        )
        args = []
        if suite is not None:
            query, args = query + " AND r.suite = ?", [suite]
        with self._write() as conn:
            conn.execute(_CLAIMS_TABLE)
            # A row a live benchmark holds under its lease is not interrupted.
            ids = [r[0] for r in conn.execute(query, args) if r[1] is None or not Lease.alive(*r[1:])]
            conn.executemany(
                "UPDATE runs SET status = 'failed', error = ? WHERE run_id = ?",
                [("interrupted: the process ended before the run finished", i) for i in ids],
            )
        return ids

    def delete_run(self, run_id: str) -> bool:
        """Delete one run and its curve; True if it existed."""
        with self._write() as conn:
            return conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount > 0

    # ---------------------------------------------------------------- runs: reads
    def get(self, run_id: str) -> RunRecord:
        """The stored record of ``run_id``, curve included; MemzooError if unknown."""
        found = self._select("WHERE run_id = ?", [run_id], with_curves=True)
        if not found:
            raise MemzooError(f"no run {run_id!r} in {self.path}")
        return found[0]

    def runs(
        self,
        task: str | None = None,
        layer: str | None = None,
        status: str | None = None,
        suite: str | None = None,
        *,
        with_curves: bool = True,
    ) -> list[RunRecord]:
        """Stored runs matching every given filter, ordered by start time then id.

        ``layer`` matches a run that uses that layer anywhere in its ``layers`` list."""
        clauses, args = [], []
        for column, value in (("task", task), ("status", status), ("suite", suite)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if layer is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(runs.layers) WHERE value = ?)")
            args.append(layer)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        return self._select(where, args, with_curves=with_curves)

    def curve(self, run_id: str) -> list[dict[str, Any]]:
        """The per-epoch dicts of one run, in epoch order (empty if none)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT metrics FROM curves WHERE run_id = ? ORDER BY epoch", (run_id,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def completed_hashes(self, suite: str | None = None) -> set[str]:
        """Config hashes of runs that finished (status in :data:`FINAL_STATUSES`)."""
        marks = ", ".join("?" * len(FINAL_STATUSES))
        query = f"SELECT config_hash FROM runs WHERE status IN ({marks})"
        args: list[Any] = list(FINAL_STATUSES)
        if suite is not None:
            query, args = query + " AND suite = ?", args + [suite]
        with self._connect() as conn:
            return {r[0] for r in conn.execute(query, args)}

    # ---------------------------------------------------------------- speed rows
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
            full["extra"] = _dumps(full["extra"] or {})
            values.append(tuple(full[k] for k in SPEED_COLUMNS))
        with self._write() as conn:
            conn.executemany(
                f"INSERT INTO speed ({', '.join(SPEED_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(SPEED_COLUMNS))})",
                values,
            )
        return len(values)

    def speed_rows(self) -> list[dict[str, Any]]:
        """Every speed row as a dict (``id`` plus :data:`SPEED_COLUMNS`), oldest first."""
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(f"SELECT id, {', '.join(SPEED_COLUMNS)} FROM speed ORDER BY id")
            out = [dict(r) for r in rows]
        for r in out:
            r["extra"] = json.loads(r["extra"])
        return out

    # ---------------------------------------------------------------- helpers
    def _row(self, record: RunRecord, status: str | None = None) -> tuple:
        status = status or record.status
        if status not in RUN_STATUSES:
            raise MemzooError(
                f"run {record.run_id!r}: status {status!r} is not one of {', '.join(RUN_STATUSES)}"
            )
        if not isinstance(record.run_id, str) or not record.run_id:
            raise MemzooError(f"run_id must be a non-empty string, got {record.run_id!r}")
        values = {c: getattr(record, c) for c in _RUN_COLUMNS}
        values["status"] = status
        for c in _JSON_RUN_COLUMNS:
            values[c] = _dumps(values[c])
        return tuple(values[c] for c in _RUN_COLUMNS)

    @staticmethod
    def _put_curve(conn: sqlite3.Connection, record: RunRecord) -> None:
        epochs = [point.get("epoch", i) for i, point in enumerate(record.curve)]
        if len(set(epochs)) != len(epochs):
            raise MemzooError(f"run {record.run_id!r}: its curve repeats an epoch: {epochs}")
        conn.executemany(
            "INSERT INTO curves (run_id, epoch, metrics) VALUES (?, ?, ?)",
            [(record.run_id, e, _dumps(p)) for e, p in zip(epochs, record.curve)],
        )

    def _select(self, where: str, args: list[Any], *, with_curves: bool) -> list[RunRecord]:
        with self._connect() as conn:
            conn.row_factory = sqlite3.Row
            rows = conn.execute(f"SELECT * FROM runs {where} ORDER BY started_at, run_id", args).fetchall()
            curves: dict[str, list[dict[str, Any]]] = {}
            if with_curves and rows:
                sub = f"SELECT run_id FROM runs {where}"
                for run_id, metrics in conn.execute(
                    f"SELECT run_id, metrics FROM curves WHERE run_id IN ({sub}) ORDER BY run_id, epoch",
                    args,
                ):
                    curves.setdefault(run_id, []).append(json.loads(metrics))
        out = []
        for row in rows:
            fields = {c: row[c] for c in _RUN_COLUMNS}
            for c in _JSON_RUN_COLUMNS:
                fields[c] = json.loads(fields[c])
            out.append(RunRecord(**fields, curve=curves.get(row["run_id"], [])))
        return out
