"""The results store: round trips, filters, curves, resuming, concurrency, refusing bad files."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import traceback

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memzoo.errors import MemzooError
from memzoo.results.record import RUN_STATUSES, RunRecord, config_hash
from memzoo.results.store import ResultsStore


def make_record(
    run_id: str,
    *,
    task="mqar",
    layers=("attention",),
    status="completed",
    suite="quick",
    seed=0,
    accuracy=0.5,
    curve=None,
) -> RunRecord:
    config = {"task": {"name": task, "seq_len": 64}, "layers": list(layers), "seed": seed}
    return RunRecord(
        run_id=run_id,
        config=config,
        config_hash=config_hash(config),
        status=status,
        task=task,
        layers=list(layers),
        suite=suite,
        started_at=1000.0 + seed,
        metrics={"accuracy": accuracy},
        curve=curve if curve is not None else [{"epoch": 0, "accuracy": accuracy / 2}],
    )


@pytest.fixture
def store(tmp_path):
    return ResultsStore(tmp_path / "sub" / "memzoo.db")


# ------------------------------------------------------------------ round trip
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
maybe_int = st.none() | st.integers(0, 2**62)
maybe_float = st.none() | st.floats(0, 1e9)
records = st.builds(
    RunRecord,
    run_id=st.text(min_size=1, max_size=20),
    config=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    config_hash=st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
    status=st.sampled_from(RUN_STATUSES),
    task=st.text(max_size=10),
    layers=st.lists(st.text(min_size=1, max_size=10), max_size=4),
    device=st.sampled_from(["cpu", "cuda:0"]),
    git_rev=st.none() | st.text(max_size=12),
    suite=st.none() | st.text(max_size=8),
    started_at=maybe_float,
    ended_at=maybe_float,
    params=maybe_int,
    state_bytes=maybe_int,
    metrics=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    wall_seconds=maybe_float,
    curve=st.integers(0, 4).map(lambda n: [{"epoch": e, "accuracy": e / 4} for e in range(n)]),
    error=st.none() | st.text(max_size=30),
)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    return ResultsStore(tmp_path_factory.mktemp("roundtrip") / "memzoo.db")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(record=records)
def test_round_trip_is_identical(shared_store, record):
    shared_store.write_record(record)
    assert shared_store.get(record.run_id) == record
    assert shared_store.curve(record.run_id) == record.curve


def test_upsert_keeps_one_row_and_replaces_curve(store):
    rec = make_record("r1", curve=[{"epoch": e, "accuracy": 0.1 * e} for e in range(5)])
    store.write_record(rec)
    rec.status, rec.curve, rec.metrics = "failed", [{"epoch": 0, "accuracy": 0.0}], {}
    store.write_record(rec)
    assert [r.run_id for r in store.runs()] == ["r1"]
    assert store.get("r1") == rec


def test_unknown_run_and_bad_status_are_errors(store):
    with pytest.raises(MemzooError, match="no run 'nope'"):
        store.get("nope")
    with pytest.raises(MemzooError, match="status 'done'"):
        store.write_record(make_record("r1", status="done"))
    with pytest.raises(MemzooError, match="repeats an epoch"):
        store.write_record(make_record("r2", curve=[{"epoch": 1}, {"epoch": 1}]))
    assert store.runs() == []  # the failed writes left nothing behind


# ------------------------------------------------------------------ filters and curves
def test_filters(store):
    store.write_record(make_record("a", task="mqar", layers=["attention", "attention"], seed=1))
    store.write_record(make_record("b", task="mqar", layers=["gru", "attention"], seed=2))
    store.write_record(make_record("c", task="copy", layers=["gru2"], status="failed", seed=3))
    store.write_record(make_record("d", task="copy", layers=["gru"], suite="full", seed=4))
    ids = lambda **kw: [r.run_id for r in store.runs(**kw)]  # noqa: E731
    assert ids() == ["a", "b", "c", "d"]
    assert ids(task="mqar") == ["a", "b"]
    assert ids(layer="attention") == ["a", "b"]
    assert ids(layer="gru") == ["b", "d"]  # any position; "gru2" is another layer
    assert ids(status="failed") == ["c"]
    assert ids(suite="full") == ["d"]
    assert ids(task="copy", layer="gru", suite="quick") == []
    assert store.runs(task="mqar", with_curves=False)[0].curve == []
    assert store.runs(task="mqar")[0].curve == [{"epoch": 0, "accuracy": 0.25}]


def test_curves_grow_by_epoch(store):
    store.start_run(make_record("r1", status="completed", curve=[]))
    assert store.get("r1").status == "running"
    for epoch in (2, 0, 1):
        store.add_epoch("r1", epoch, {"accuracy": epoch / 10, "train_loss": 1.0})
    store.add_epoch("r1", 1, {"accuracy": 0.9})  # replaces epoch 1
    assert store.curve("r1") == [
        {"epoch": 0, "accuracy": 0.0, "train_loss": 1.0},
        {"epoch": 1, "accuracy": 0.9},
        {"epoch": 2, "accuracy": 0.2, "train_loss": 1.0},
    ]
    assert store.curve("unknown") == []
    with pytest.raises(MemzooError, match="start_run first"):
        store.add_epoch("unknown", 0, {"accuracy": 1.0})
    with pytest.raises(MemzooError, match="already in"):
        store.start_run(make_record("r1"))


# ------------------------------------------------------------------ resuming
def test_completed_hashes(store):
    for i, status in enumerate(["completed", "diverged", "failed", "running"]):
        store.write_record(make_record(f"r{i}", status=status, seed=i))
    store.write_record(make_record("other", suite="full", seed=9))
    expected = {make_record("x", seed=i).config_hash for i in (0, 1)}
    assert store.completed_hashes("quick") == expected
    assert store.completed_hashes() == expected | {make_record("x", seed=9).config_hash}


def test_claim_replaces_stale_runs_instead_of_duplicating(store):
    stale = make_record("stale", seed=1, curve=[])
    store.start_run(stale)  # the process running it is then killed
    store.add_epoch("stale", 0, {"accuracy": 0.1})
    fresh = make_record("fresh", seed=1, curve=[])
    assert fresh.config_hash == stale.config_hash
    assert store.claim(fresh) is True
    assert [(r.run_id, r.status) for r in store.runs()] == [("fresh", "running")]
    assert store.curve("stale") == []  # its curve went with it

    fresh.status = "failed"
    store.write_record(fresh)
    again = make_record("again", seed=1, curve=[])
    assert store.claim(again) is True  # a failed run is retried, still one row
    again.status = "completed"
    store.write_record(again)
    assert store.claim(make_record("late", seed=1)) is False  # finished: nothing written
    assert [r.run_id for r in store.runs()] == ["again"]
    assert store.claim(make_record("other-suite", seed=1, suite="full")) is True


def test_mark_interrupted(store):
    store.start_run(make_record("a", seed=1))
    store.start_run(make_record("b", seed=2, suite="full"))
    store.write_record(make_record("c", seed=3))
    assert store.runs(status="running") != []  # how a driver finds rows left running
    assert store.mark_interrupted("quick") == ["a"]
    assert store.get("a").status == "failed" and "interrupted" in store.get("a").error
    assert store.get("b").status == "running" and store.get("c").status == "completed"
    assert store.mark_interrupted() == ["b"]


# ------------------------------------------------------------------ speed rows
def test_speed_rows(store):
    rows = [
        {
            "layer": "gru",
            "seq_len": 512,
            "mode": "train",
            "tokens_per_s": 1.5e5,
            "machine": "cpu-2",
            "mfu": 0.1,
            "extra": {"batch": 8},
        },
        {"layer": "attention", "seq_len": 512, "mode": "infer", "tokens_per_s": 9e4},
    ]
    assert store.add_speed_rows(rows) == 2
    got = store.speed_rows()
    assert [(r["layer"], r["tokens_per_s"], r["extra"]) for r in got] == [
        ("gru", 1.5e5, {"batch": 8}),
        ("attention", 9e4, {}),
    ]
    assert got[1]["created_at"] > 0 and got[1]["machine"] is None
    with pytest.raises(MemzooError, match="unknown keys \\['tokens'\\]"):
        store.add_speed_rows([{"layer": "gru", "seq_len": 1, "mode": "train", "tokens": 1}])
    assert len(store.speed_rows()) == 2


# ------------------------------------------------------------------ concurrency
def _writer(path: str, worker: int, barrier, errors) -> None:
    try:
        barrier.wait()
        store = ResultsStore(path)  # every worker races to create the schema too
        for i in range(25):
            rec = make_record(f"w{worker}-r{i}", seed=worker * 100 + i, curve=[])
            store.start_run(rec)
            for epoch in range(2):
                store.add_epoch(rec.run_id, epoch, {"accuracy": epoch / 2})
            rec.status, rec.curve = "completed", store.curve(rec.run_id)
            store.write_record(rec)
    except BaseException:
        errors.put(traceback.format_exc())
        raise


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "memzoo.db")
    ctx = multiprocessing.get_context("fork")  # the children need no fresh interpreter
    barrier, errors = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(path, w, barrier, errors)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert errors.empty(), errors.get()
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    runs = ResultsStore(path).runs()
    assert len(runs) == 100 and {r.status for r in runs} == {"completed"}
    assert all(len(r.curve) == 2 for r in runs)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ------------------------------------------------------------------ refusing bad files
def _refused(path, match: str) -> None:
    before = path.read_bytes()
    with pytest.raises(MemzooError, match=match):
        ResultsStore(path).runs()
    assert path.read_bytes() == before


def test_refuses_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("my precious notes, not a database\n" * 50)
    _refused(path, "not an SQLite file")
    assert sorted(os.listdir(tmp_path)) == ["notes.db"]


def test_refuses_corrupt_and_foreign_databases(tmp_path):
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 20)
    _refused(corrupt, "corrupt")

    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance REAL)")
    conn.close()
    _refused(foreign, "another application")

    newer = tmp_path / "newer.db"
    ResultsStore(newer)
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE memzoo_meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    _refused(newer, "upgrade memzoo")

    with pytest.raises(MemzooError, match="is a folder"):
        ResultsStore(tmp_path)


def test_damaged_pages_raise_memzoo_error(tmp_path):
    path = tmp_path / "memzoo.db"
    store = ResultsStore(path)
    for i in range(40):
        store.write_record(make_record(f"r{i}", seed=i, curve=[{"epoch": 0, "x": "y" * 200}]))
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\xa5" * (len(data) - page)  # every page after the first
    path.write_bytes(bytes(data))
    with pytest.raises(MemzooError, match="corrupt"):
        ResultsStore(path).runs()
