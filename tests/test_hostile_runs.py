"""Hostile runs and rows: a ``kill -9``-ed run shows ``interrupted`` and resumes; a bench's
unstarted runs show ``queued``; damaged rows in the results database are skipped, named, and
every other row still read."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from memzoo.errors import MemzooError
from memzoo.results.lease import Lease
from memzoo.results.record import RunRecord
from memzoo.results.store import SCHEMA_VERSION, DamagedRowWarning, ResultsStore
from memzoo.sweep.executors import failed_record
from memzoo.sweep.runner import run_bench
from memzoo.train import build_config
from tests.test_hostile import TINY, run_main

DEAD_PID = 2**22 + 12345  # above Linux's pid_max: no such process


def record(run_id: str, config_hash: str = "h", **fields) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        config={},
        config_hash=config_hash,
        status="running",
        task="t",
        layers=[],
        suite="s",
        **fields,
    )


def shown(store: ResultsStore) -> dict[str, str]:
    return {r.run_id: r.status for r in store.runs(with_curves=False)}


def _rows(db, query: str) -> list[tuple]:
    """Rows of ``query`` read straight from the file; [] before its schema exists."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return []


# ---------------------------------------------------------------- kill -9 of memzoo train
def test_a_killed_train_shows_interrupted_and_resumes(tmp_path, monkeypatch, capsys):
    db = tmp_path / "t.db"
    args = [sys.executable, "-m", "memzoo", "train", *TINY, "train.epochs=1000", "--db", db]
    args += [f"train.out_dir={tmp_path}/runs"]
    proc = subprocess.Popen(
        list(map(str, args)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 120
    # Two stored epochs: the resume state of the first one is saved.
    while _rows(db, "SELECT COUNT(*) >= 2 FROM curves") != [(1,)] and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    ((run_id, stored),) = _rows(db, "SELECT run_id, status FROM runs")
    assert stored == "running"  # nothing could write the row after a SIGKILL

    code, out, err = run_main(monkeypatch, capsys, ["runs", "--db", db, "--json"])
    assert code in (0, None), err
    assert [json.loads(line)["status"] for line in out.splitlines()] == ["interrupted"]
    code, out, _ = run_main(monkeypatch, capsys, ["runs", "--db", db, "--status", "interrupted"])
    assert run_id in out
    assert ResultsStore(db).get(run_id).status == "interrupted"

    code, out, err = run_main(
        monkeypatch, capsys, ["train", "--resume", run_id, "--db", db, "train.epochs=3", "--json"]
    )
    assert code in (0, None), err
    assert json.loads(out.splitlines()[-1])["status"] == "completed"
    assert shown(ResultsStore(db)) == {run_id: "completed"}
    assert _rows(db, "SELECT * FROM claims") == []  # a finished run has no holder


def test_a_dead_holder_reads_interrupted_and_its_config_is_rerun(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    store.start_run(record("dead"), Lease(pid=DEAD_PID))
    store.start_run(record("alive", "h2"), Lease())  # held by this process
    store.start_run(record("unheld", "h3"))  # written without a lease: nothing to judge by
    assert shown(store) == {"dead": "interrupted", "alive": "running", "unheld": "running"}
    assert [r.run_id for r in store.runs(status="interrupted")] == ["dead"]
    assert [r.run_id for r in store.runs(status="running")] == ["alive", "unheld"]
    assert store.claim(record("again"), Lease())  # the dead run's config is unfinished
    assert "dead" not in shown(store)


def test_resume_is_refused_while_the_run_is_alive(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    store.start_run(record("r", started_at=1.0), Lease())  # held by this live process
    with pytest.raises(MemzooError, match="still running"):
        store.write_record(record("r", started_at=2.0), Lease())
    assert store.get("r").started_at == 1.0  # nothing written
    store.start_run(record("d", "h2"), Lease(pid=DEAD_PID))
    store.write_record(record("d", "h2"), Lease())  # a dead holder's run is taken over
    assert shown(store) == {"r": "running", "d": "running"}


# ---------------------------------------------------------------- a bench's queued runs
def test_claimed_runs_are_queued_until_a_worker_starts_them(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    lease = Lease()
    assert store.claim(record("a", "ha"), lease) and store.claim(record("b", "hb"), lease)
    assert shown(store) == {"a": "queued", "b": "queued"}
    store.mark_started(["a"])
    assert shown(store) == {"a": "running", "b": "queued"}
    store.release(lease)  # the driver is gone: what it started is interrupted
    assert shown(store) == {"a": "interrupted", "b": "queued"}
    assert [r.run_id for r in store.runs(status="queued")] == ["b"]


def test_a_killed_benchs_runs_are_interrupted_or_queued(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    dead = Lease(pid=DEAD_PID)
    for name in "abc":
        store.claim(record(name, f"h{name}"), dead)
    store.mark_started(["a"])
    assert shown(store) == {"a": "interrupted", "b": "queued", "c": "queued"}
    assert store.claim(record("b2", "hb"), Lease())  # the next bench reruns them


class ProbeExecutor:
    """Starts the first job, looks at the store, then fails every job (no training)."""

    name = "probe"

    def __init__(self, store: ResultsStore):
        self.store, self.seen = store, {}

    def run(self, jobs, on_record, on_start=None):
        on_start(jobs[0])
        self.seen = {job.run_id: shown(self.store)[job.run_id] for job in jobs}
        for job in jobs:
            on_record(failed_record(job, "probe"))


def test_a_running_bench_shows_one_running_and_the_rest_queued(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    probe = ProbeExecutor(store)
    run_bench("smoke", store, probe, progress=False)
    assert sorted(probe.seen.values()) == ["queued", "queued", "queued", "running"]
    assert set(shown(store).values()) == {"failed"}


def test_a_schema_1_database_is_migrated_with_its_claims(tmp_path):
    """Schema 1 had no claims table; memzoo created one on first use, first without
    ``started``: opening such a database brings it to the current schema, holders kept."""
    db = tmp_path / "r.db"
    ResultsStore(db).start_run(record("old"))
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE claims")
        conn.execute("UPDATE memzoo_meta SET value = '1' WHERE key = 'schema_version'")
        conn.execute(
            "CREATE TABLE claims (run_id TEXT PRIMARY KEY, owner TEXT NOT NULL, "
            "host TEXT NOT NULL, pid INTEGER NOT NULL, expires_at REAL NOT NULL)"
        )
        conn.execute("INSERT INTO claims VALUES ('old', 'o', ?, ?, 0)", (Lease().host, os.getpid()))
    store = ResultsStore(db)
    with sqlite3.connect(db) as conn:
        version = conn.execute("SELECT value FROM memzoo_meta WHERE key = 'schema_version'").fetchone()[0]
        columns = {row[1] for row in conn.execute("PRAGMA table_info(claims)")}
    assert version == str(SCHEMA_VERSION) and "started" in columns
    assert shown(store) == {"old": "interrupted"}  # expired
    assert store.claim(record("new", "h2"), Lease())
    assert shown(store) == {"old": "interrupted", "new": "queued"}


# ---------------------------------------------------------------- damaged rows
DAMAGE = [
    ("config", "{not json"),
    ("config", "[1, 2]"),
    ("config", '"a string"'),
    ("layers", "[1, 2]"),
    ("layers", '{"gru": 1}'),
    ("metrics", "[]"),
    ("metrics", "not json"),
    ("wall_seconds", "slow"),
]


@pytest.fixture
def damaged_db(tmp_path):
    """A database with one good run (one of its curve points damaged), one damaged run per
    entry of DAMAGE, and a good and a damaged speed row."""
    db = tmp_path / "d.db"
    store = ResultsStore(db)
    config = build_config({}, TINY).model_dump(mode="json")
    for i, run_id in enumerate(["good"] + [f"bad{i}" for i in range(len(DAMAGE))]):
        store.write_record(
            RunRecord(
                run_id=run_id,
                config=config,
                config_hash=f"h{i}",
                status="completed",
                task="mqar",
                layers=["gru"],
                suite="s",
                started_at=float(i),
                metrics={"accuracy": 0.5},
                wall_seconds=1.0,
                curve=[{"epoch": 1, "accuracy": 0.4}, {"epoch": 2, "accuracy": 0.5}],
            )
        )
    row = {"layer": "gru", "seq_len": 64, "mode": "train", "tokens_per_s": 10.0}
    store.add_speed_rows([row, row])
    with sqlite3.connect(db) as conn:
        for i, (column, value) in enumerate(DAMAGE):
            conn.execute(f"UPDATE runs SET {column} = ? WHERE run_id = ?", (value, f"bad{i}"))
        conn.execute("UPDATE curves SET metrics = '{\"epoch\": ' WHERE run_id = 'good' AND epoch = 2")
        conn.execute("UPDATE speed SET extra = '[]' WHERE id = 1")
    return db


def _warnings(err: str) -> list[str]:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith("warning: ") for line in lines), err
    return lines


def test_runs_skips_and_names_damaged_rows(damaged_db, monkeypatch, capsys):
    for extra in (["--json"], []):
        code, out, err = run_main(monkeypatch, capsys, ["runs", "--db", damaged_db, *extra])
        assert code in (0, None), err
        assert "good" in out and "bad" not in out
        lines = _warnings(err)
        assert len(lines) == len(DAMAGE)
        for i, (column, _) in enumerate(DAMAGE):
            (line,) = [line for line in lines if f"'bad{i}'" in line]
            assert str(damaged_db) in line and f"its {column} " in line


def test_report_skips_and_names_damaged_rows(damaged_db, tmp_path, monkeypatch, capsys):
    out_file = tmp_path / "r.html"
    code, _, err = run_main(monkeypatch, capsys, ["report", "--db", damaged_db, "--out", out_file])
    assert code in (0, None), err
    assert out_file.is_file()
    lines = _warnings(err)
    assert len(lines) == len(DAMAGE) + 2
    assert any("epoch 2 of run 'good'" in line and "its metrics" in line for line in lines)
    assert any("speed row 1" in line and "its extra" in line for line in lines)


def test_store_reads_keep_the_good_rows(damaged_db):
    store = ResultsStore(damaged_db)
    with pytest.warns(DamagedRowWarning) as caught:
        (good,) = store.runs()
        assert good.curve == [{"epoch": 1, "accuracy": 0.4}]
        assert store.curve("good") == good.curve
        assert [r["id"] for r in store.speed_rows()] == [2]
        assert [r.run_id for r in store.runs(layer="gru")] == ["good"]
    assert all(str(damaged_db) in str(w.message) for w in caught)
    with pytest.warns(DamagedRowWarning, match="'bad0'"), pytest.raises(MemzooError, match="no run 'bad0'"):
        store.get("bad0")
