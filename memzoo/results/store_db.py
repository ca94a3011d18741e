"""The SQLite file under the results store: open, validate, create the schema, transact.

Every operation opens a fresh connection (safe across ``fork`` and threads) in autocommit
mode; writes go through :meth:`SqliteFile._write`, one ``BEGIN IMMEDIATE`` transaction
(the write lock is taken up front, so two writers never deadlock upgrading a read lock),
and a busy database is waited on for ``timeout`` seconds rather than failing. The file is
switched to WAL mode once (readers then never block the writer).

Nothing is ever written to a file before it is known to be a memzoo database (or empty):
another format, another application's SQLite file, a newer schema or a corrupt file
raises :class:`~memzoo.errors.MemzooError` and the file keeps its bytes.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from memzoo.errors import MemzooError
from memzoo.files import check_name_length, check_writable_folder, os_errors_named

SCHEMA_VERSION = 2  # 2: the claims table (who holds a running row) joined the schema
APP_NAME = "memzoo"
SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS memzoo_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, suite TEXT, task TEXT NOT NULL, layers TEXT NOT NULL,
    config TEXT NOT NULL, config_hash TEXT NOT NULL, status TEXT NOT NULL,
    started_at REAL, ended_at REAL, device TEXT, git_rev TEXT, params INTEGER,
    state_bytes INTEGER, metrics TEXT NOT NULL, wall_seconds REAL, error TEXT);
CREATE INDEX IF NOT EXISTS runs_suite_hash ON runs (suite, config_hash);
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    epoch INTEGER NOT NULL, metrics TEXT NOT NULL, PRIMARY KEY (run_id, epoch));
CREATE TABLE IF NOT EXISTS speed (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL NOT NULL, machine TEXT,
    layer TEXT NOT NULL, seq_len INTEGER NOT NULL, mode TEXT NOT NULL,
    tokens_per_s REAL NOT NULL, ratio_vs_reference REAL, state_bytes INTEGER,
    mfu REAL, extra TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
    run_id TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    expires_at REAL NOT NULL, started INTEGER NOT NULL DEFAULT 1);
"""

# How a database of schema N becomes N + 1: statements, or a function of the connection.
# Schema 1 had no claims table; memzoo then created it on first use, at first without
# ``started``: both are brought to schema 2.


def _claims_of_schema_2(conn: sqlite3.Connection) -> None:
    conn.execute(_SCHEMA.split(";")[-2])  # the claims table, if it is missing
    if "started" not in {row[1] for row in conn.execute("PRAGMA table_info(claims)")}:
        conn.execute("ALTER TABLE claims ADD COLUMN started INTEGER NOT NULL DEFAULT 1")


_MIGRATIONS = {1: _claims_of_schema_2}


class SqliteFile:
    """A memzoo SQLite file: validated, with its schema, on construction.

    Args:
        path: the database file; its parent folder and the schema are created on first use.
        timeout: seconds a write waits for another process's write lock before failing.
    """

    def __init__(self, path: str | Path, *, timeout: float = 60.0):
        self.path = Path(path)
        self.timeout = float(timeout)
        check_name_length(self.path, "results store")
        with os_errors_named(self.path, "open results store"):
            self._check_file()
        if not self.path.exists():  # a read-only or impossible folder is named before SQLite's vaguer error
            check_writable_folder(self.path.parent, "results store folder")
        self._init_schema()

    def _check_file(self) -> None:
        """Refuse, before SQLite opens it, anything that is not an SQLite file."""
        if self.path.is_dir():
            raise MemzooError(f"results store {self.path} is a folder, expected a database file")
        if self.path.exists() and self.path.stat().st_size > 0:
            with open(self.path, "rb") as fh:
                header = fh.read(len(SQLITE_HEADER))
            if header != SQLITE_HEADER:
                raise MemzooError(
                    f"{self.path} is not a memzoo results database (not an SQLite file); "
                    "refusing to touch it: pass another --db path"
                )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh autocommit connection; SQLite errors become MemzooError."""
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        except sqlite3.Error as err:
            raise MemzooError(f"cannot open results store {self.path}: {err}") from err
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            # Per connection: in WAL mode a commit survives a crash of the process, and
            # skipping the fsync per commit keeps many small writers fast.
            conn.execute("PRAGMA synchronous = NORMAL")
            yield conn
        except sqlite3.DatabaseError as err:
            if "readonly" in str(err) or "read-only" in str(err):
                raise MemzooError(
                    f"results store {self.path} is read-only (the file or its folder cannot be "
                    f"written): pass a writable --db path ({err})"
                ) from err
            if isinstance(err, sqlite3.OperationalError) and ("locked" in str(err) or "busy" in str(err)):
                raise MemzooError(
                    f"results store {self.path} stayed locked by another process for more "
                    f"than {self.timeout:g} s: {err}"
                ) from err
            raise MemzooError(f"results store {self.path} is unusable or corrupt: {err}") from err
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of its statements land, or none does."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:  # SQLite may already have rolled back
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _init_schema(self) -> None:
        with self._connect() as conn:
            # Read-only checks first: nothing is written to a file we do not own.
            version = self._validate(conn)
            if not version:
                self._create_schema()
            elif version < SCHEMA_VERSION:
                self._migrate()
            self._enable_wal(conn)

    def _migrate(self) -> None:
        """Bring an older memzoo database to :data:`SCHEMA_VERSION`, one step per transaction
        (a read-only file stays as it is: its reads still work)."""
        try:
            with self._write() as conn:
                version = self._validate(conn)  # another process may have migrated it
                while version < SCHEMA_VERSION:
                    _MIGRATIONS[version](conn)
                    version += 1
                    conn.execute("UPDATE memzoo_meta SET value = ? WHERE key = 'schema_version'", (str(version),))
        except MemzooError as err:
            if "read-only" not in str(err):
                raise

    def _create_schema(self) -> None:
        with self._write() as conn:
            if self._validate(conn):  # another process created it since we looked
                return
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany(
                "INSERT INTO memzoo_meta (key, value) VALUES (?, ?)",
                [("app", APP_NAME), ("schema_version", str(SCHEMA_VERSION))],
            )

    def _validate(self, conn: sqlite3.Connection) -> int:
        """The schema version of a memzoo database, 0 for an empty one; raises for anything
        else (another application's file, a newer schema)."""
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if not tables:
            return 0
        if "memzoo_meta" not in tables:
            raise MemzooError(
                f"{self.path} is an SQLite database of another application (no memzoo_meta "
                "table); refusing to touch it: pass another --db path"
            )
        meta = dict(conn.execute("SELECT key, value FROM memzoo_meta").fetchall())
        if meta.get("app") != APP_NAME:
            raise MemzooError(f"{self.path} is not a memzoo results database")
        version = meta.get("schema_version", "")
        if not version.isdigit():
            raise MemzooError(f"{self.path}: memzoo_meta has no valid schema_version")
        version = int(version)
        if version > SCHEMA_VERSION:
            raise MemzooError(
                f"{self.path} has results-store schema {version}, this memzoo reads up to "
                f"{SCHEMA_VERSION}: upgrade memzoo"
            )
        return version

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        # WAL persists in the file; switching needs a moment without other connections.
        if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        for _ in range(50):
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError:
                mode = None
            if mode == "wal":
                return
            time.sleep(0.05)
        # Still correct in rollback-journal mode, only readers block writers there.
