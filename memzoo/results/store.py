"""The results store: every benchmark run in one SQLite file that the report reads.

Tables (schema version ``SCHEMA_VERSION``, kept in ``memzoo_meta``; see ``store_db``):

- ``runs``: one row per :class:`~memzoo.results.record.RunRecord`; ``layers``, ``config``
  and ``metrics`` are JSON text (extra metrics such as retention live in ``metrics``).
  Indexed on ``(suite, config_hash)`` for resuming a benchmark.
- ``curves``: one row per (run, epoch); ``metrics`` is the whole per-epoch dict as JSON.
- ``speed``: one row per speed measurement (see :data:`SPEED_COLUMNS`).
- ``claims`` (created on first use): which process holds a ``running`` row, under a
  :class:`~memzoo.results.lease.Lease`, and whether a benchmark worker started it.

Reads show a row stored ``running`` as what it is: ``running`` while its holder lives (or
when it has none: a row written without a lease), ``interrupted`` once the holder's process
is gone without finishing it (a ``kill -9``; ``memzoo train --resume`` continues it, a
benchmark reruns it), ``queued`` while a benchmark claimed it but no worker started it.

A damaged row (a JSON column that does not decode to its shape, see
:mod:`~memzoo.results.rows`) is skipped by every read with a
:class:`~memzoo.results.rows.DamagedRowWarning` naming the database, the row and the column.

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
import sqlite3
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from memzoo.errors import MemzooError
from memzoo.results.lease import Lease, holders, shown_status
from memzoo.results.speed_table import SPEED_COLUMNS, SPEED_OPTIONAL, SPEED_REQUIRED, SpeedRows
from memzoo.results.record import RUN_STATUSES, RunRecord
from memzoo.results.rows import DamagedColumn, DamagedRowWarning, decode_run, json_object
from memzoo.results.store_db import SCHEMA_VERSION, SqliteFile

__all__ = [
    "DEFAULT_DB",
    "FINAL_STATUSES",
    "DamagedRowWarning",
    "Lease",
    "RESULT_STATUSES",
    "SCHEMA_VERSION",
    "SPEED_COLUMNS",
    "ResultsStore",
]

DEFAULT_DB = "results/memzoo.db"  # where every command reads and writes runs unless told

# A run with one of these statuses ran to its end: resuming a benchmark skips it.
FINAL_STATUSES = ("completed", "diverged", "truncated")
# Runs whose numbers enter result tables: a run cut short by its wall-time cap ("truncated")
# measured the machine, not the model, and is only listed as such.
RESULT_STATUSES = ("completed", "diverged")
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


def _dumps(value: Any) -> str:
    # default=str mirrors config_hash: a value JSON cannot hold is stored as its text.
    return json.dumps(value, default=str)


class ResultsStore(SpeedRows, SqliteFile):
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
    def start_run(self, record: RunRecord, lease: Lease | None = None) -> None:
        """Insert ``record`` with status ``running`` (and its curve, usually empty), held
        under ``lease`` when given (renew it while the run goes on; see :class:`Lease`).

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
            if lease is not None:
                self._hold(conn, record.run_id, lease, started=True)

    def claim(self, record: RunRecord, lease: Lease | None = None) -> bool:
        """Start ``record`` unless its config already finished in the same suite, or another
        live benchmark holds it.

        Rows with the same ``(suite, config_hash)`` that did not finish (``running`` rows
        left by a killed process, ``failed`` rows) are deleted with their curves in the same
        transaction, so a resumed benchmark replaces them instead of adding duplicates.
        Returns False (and writes nothing) when a ``completed``/``diverged``/``truncated``
        row exists, or a ``running`` row whose lease is live (see :class:`Lease`): two
        benchmarks of one suite on one database then share the work, each config run once.
        With ``lease``, the new row is held under it, ``queued`` until :meth:`mark_started`."""
        row = self._row(record, status="running")
        with self._write() as conn:
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
                self._hold(conn, record.run_id, lease, started=False)
        return True

    def mark_started(self, run_ids: Iterable[str]) -> None:
        """A worker began the claimed runs ``run_ids``: they read ``running``, not ``queued``."""
        with self._write() as conn:
            conn.executemany("UPDATE claims SET started = 1 WHERE run_id = ?", [(i,) for i in run_ids])

    def renew(self, lease: Lease) -> int:
        """Push back the expiry of every claim held under ``lease``; how many there are."""
        with self._write() as conn:
            return conn.execute(
                "UPDATE claims SET expires_at = ? WHERE owner = ?", (time.time() + lease.ttl, lease.owner)
            ).rowcount

    def release(self, lease: Lease) -> None:
        """End ``lease`` now: its rows still ``running`` have no live holder any more, so they
        read ``interrupted`` (or ``queued``, if never started) and any benchmark reclaims them."""
        with self._write() as conn:
            conn.execute("UPDATE claims SET expires_at = 0 WHERE owner = ?", (lease.owner,))

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

    def write_record(self, record: RunRecord, lease: Lease | None = None) -> None:
        """Insert or replace the whole record, its curve included, in one transaction.

        A record that is not ``running`` (finished, failed) drops the run's holder. A
        ``running`` one given ``lease`` (a resumed run) is held under it from now on;
        MemzooError, and nothing written, if another live process holds the run."""
        row = self._row(record)
        with self._write() as conn:
            if record.status != "running":
                conn.execute("DELETE FROM claims WHERE run_id = ?", (record.run_id,))
            elif lease is not None:
                self._hold(conn, record.run_id, lease, started=True)
            conn.execute(_UPSERT_RUN, row)
            conn.execute("DELETE FROM curves WHERE run_id = ?", (record.run_id,))
            self._put_curve(conn, record)

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
            # A row a live process holds under its lease is not interrupted.
            ids = [r[0] for r in conn.execute(query, args) if r[1] is None or not Lease.alive(*r[1:])]
            conn.executemany(
                "UPDATE runs SET status = 'failed', error = ? WHERE run_id = ?",
                [("interrupted: the process ended before the run finished", i) for i in ids],
            )
        return ids

    def delete_run(self, run_id: str) -> bool:
        """Delete one run and its curve; True if it existed."""
        with self._write() as conn:
            conn.execute("DELETE FROM claims WHERE run_id = ?", (run_id,))
            return conn.execute("DELETE FROM runs WHERE run_id = ?", (run_id,)).rowcount > 0

    def set_metric(self, run_id: str, key: str, value: Any) -> None:
        """Set (or replace) ``metrics[key]`` of a stored run in one atomic update, e.g. an
        inspection computed later; the rest of the row is untouched. MemzooError if unknown."""
        with self._write() as conn:
            sql = "UPDATE runs SET metrics = json_set(metrics, ?, json(?)) WHERE run_id = ?"
            if conn.execute(sql, (f'$."{key}"', _dumps(value), run_id)).rowcount == 0:
                raise MemzooError(f"no run {run_id!r} in {self.path}")

    # ---------------------------------------------------------------- runs: reads
    def get(self, run_id: str) -> RunRecord:
        """The stored record of ``run_id``, curve included; MemzooError if unknown (or damaged:
        then with a :class:`DamagedRowWarning`)."""
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
        """Stored runs matching every given filter, ordered by start time then id; damaged
        rows are skipped, each with a :class:`DamagedRowWarning`.

        ``layer`` matches a run that uses that layer anywhere in its ``layers`` list;
        ``status`` matches the status as shown (a row stored ``running`` may show
        ``queued`` or ``interrupted``, see the module docstring)."""
        clauses, args = [], []
        for column, value in (("task", task), ("suite", suite)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if status is not None:
            clauses.append("status IN (?, 'running')")
            args.append(status)
        if layer is not None:
            valid = "CASE WHEN json_valid(runs.layers) THEN runs.layers ELSE '[]' END"
            clauses.append(f"EXISTS (SELECT 1 FROM json_each({valid}) WHERE value = ?)")
            args.append(layer)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        found = self._select(where, args, with_curves=with_curves)
        return found if status is None else [r for r in found if r.status == status]

    def curve(self, run_id: str) -> list[dict[str, Any]]:
        """The per-epoch dicts of one run, in epoch order (empty if none); damaged points are
        skipped, each with a :class:`DamagedRowWarning`."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT run_id, epoch, metrics FROM curves WHERE run_id = ? ORDER BY epoch", (run_id,)
            ).fetchall()
        return self._curves(rows).get(run_id, [])

    def completed_hashes(self, suite: str | None = None) -> set[str]:
        """Config hashes of runs that finished (status in :data:`FINAL_STATUSES`)."""
        marks = ", ".join("?" * len(FINAL_STATUSES))
        query = f"SELECT config_hash FROM runs WHERE status IN ({marks})"
        args: list[Any] = list(FINAL_STATUSES)
        if suite is not None:
            query, args = query + " AND suite = ?", args + [suite]
        with self._connect() as conn:
            return {r[0] for r in conn.execute(query, args)}

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
            held = holders(conn)
            curves: dict[str, list[dict[str, Any]]] = {}
            if with_curves and rows:
                sub = f"SELECT run_id FROM runs {where}"
                curves = self._curves(
                    conn.execute(
                        f"SELECT run_id, epoch, metrics FROM curves WHERE run_id IN ({sub}) "
                        "ORDER BY run_id, epoch",
                        args,
                    )
                )
        out = []
        for row in rows:
            try:
                record = decode_run(row, _RUN_COLUMNS, curves.get(row["run_id"], []))
            except DamagedColumn as err:
                self._skipped(f"run {row['run_id']!r}", err)
                continue
            record.status = shown_status(record.status, held.get(record.run_id))
            out.append(record)
        return out

    def _curves(self, rows: Iterable[tuple[str, int, str]]) -> dict[str, list[dict[str, Any]]]:
        """``{run_id: points}`` of ``(run_id, epoch, metrics)`` curve rows, in their order."""
        curves: dict[str, list[dict[str, Any]]] = {}
        for run_id, epoch, metrics in rows:
            try:
                point = json_object("metrics", metrics)
            except DamagedColumn as err:
                self._skipped(f"epoch {epoch} of run {run_id!r}", err)
                continue
            curves.setdefault(run_id, []).append(point)
        return curves

    def _skipped(self, row: str, err: DamagedColumn) -> None:
        warnings.warn(f"{self.path}: skipped {row}: {err}", DamagedRowWarning, stacklevel=4)

    def _hold(self, conn: sqlite3.Connection, run_id: str, lease: Lease, *, started: bool) -> None:
        """Hold ``run_id`` under ``lease``; MemzooError if another live process holds it."""
        held = conn.execute("SELECT owner, host, pid, expires_at FROM claims WHERE run_id = ?", (run_id,))
        for owner, host, pid, expires_at in held.fetchall():
            if owner != lease.owner and Lease.alive(host, pid, expires_at):
                raise MemzooError(
                    f"run {run_id!r} in {self.path} is still running (process {pid} on {host}): stop it first"
                )
        conn.execute(
            "INSERT OR REPLACE INTO claims (run_id, owner, host, pid, expires_at, started) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, lease.owner, lease.host, lease.pid, time.time() + lease.ttl, int(started)),
        )
