"""Who holds a ``running`` row of the results store: a :class:`Lease` and its :class:`Heartbeat`.

Every process that runs something stored as ``running`` (a ``memzoo train`` with a store, a
benchmark driver for the runs it claimed) holds the row under a lease: its host, its pid and
an expiry that a heartbeat thread pushes back. A reader of the store can then tell a run that
is going on from one whose process is gone (killed outright, ``kill -9``): the store shows the
latter as ``interrupted``.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from memzoo.errors import MemzooError

if TYPE_CHECKING:
    from memzoo.results.store import ResultsStore


@dataclass(frozen=True)
class Lease:
    """A process's hold on the runs it stores as ``running``: its host and process, and an
    expiry that it pushes back (:meth:`ResultsStore.renew`, see :class:`Heartbeat`) while it works.

    A hold is live while it has not expired and, on this host, its process still runs. So a
    process killed outright (``kill -9``) loses its runs at once for a reader on the same
    machine, and after ``ttl`` seconds for one elsewhere."""

    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    ttl: float = 120.0

    @staticmethod
    def alive(host: str, pid: int, expires_at: float) -> bool:
        """Whether a hold by process ``pid`` on ``host``, expiring at ``expires_at``, is live."""
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


class Heartbeat:
    """Renews ``lease`` in ``store`` every ``ttl / 4`` seconds in a daemon thread until
    :meth:`stop` (or the end of a ``with`` block). A renewal that meets a busy database is
    skipped: the next beat tries again, well before the lease expires."""

    def __init__(self, store: ResultsStore, lease: Lease):
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(store, lease), daemon=True)
        self._thread.start()

    def _beat(self, store: ResultsStore, lease: Lease) -> None:
        while not self._stopped.wait(lease.ttl / 4):
            try:
                store.renew(lease)
            except (MemzooError, sqlite3.Error):
                continue

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# The claims table (in the store's schema, ``memzoo.results.store_db``) says which process
# holds a running row, until when, and whether a worker started it (0: a benchmark's claim
# still queued).


def holders(conn: sqlite3.Connection) -> dict[str, tuple[str, int, float, int]]:
    """``{run_id: (host, pid, expires_at, started)}`` of the held ``running`` rows (read only;
    a database of schema 1 left unmigrated on a read-only file has no claims table)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(claims)")}
    if not columns:
        return {}
    started = "c.started" if "started" in columns else "1"
    rows = conn.execute(
        f"SELECT c.run_id, c.host, c.pid, c.expires_at, {started} FROM claims c "
        "JOIN runs r ON r.run_id = c.run_id WHERE r.status = 'running'"
    )
    return {row[0]: tuple(row)[1:] for row in rows}


def shown_status(stored: str, holder: tuple[str, int, float, int] | None) -> str:
    """What a reader sees of a row stored with status ``stored``: ``queued`` (claimed, never
    started), ``interrupted`` (its holder is gone), else the stored status."""
    if stored != "running" or holder is None:
        return stored
    host, pid, expires_at, started = holder
    if not started:
        return "queued"
    return "running" if Lease.alive(host, pid, expires_at) else "interrupted"
