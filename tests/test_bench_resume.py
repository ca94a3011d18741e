"""An interrupted benchmark resumes: each config of the suite ends stored once, completed.

A real ``memzoo bench`` process is killed (SIGKILL) or interrupted (SIGINT, i.e. Ctrl-C)
once some but not all of its runs are stored, then the bench runs again.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from memzoo.errors import ConfigError
from memzoo.results.record import config_hash
from memzoo.results.store import ResultsStore
from memzoo.sweep.executors import LocalExecutor
from memzoo.sweep.jobs import Job, run_job
from memzoo.sweep.runner import plan_jobs, run_bench
from memzoo.sweep.suites import suite_configs

# The bench CLI with Python's Ctrl-C handler installed even if this process ignores SIGINT.
LAUNCH = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from memzoo.cli.main import main; sys.argv[0] = 'memzoo'; main()"
)
SMOKE_HASHES = {config_hash(c.model_dump(mode="json")) for c in suite_configs("smoke")}


def _bench_args(db: Path) -> list[str]:
    # Two workers with one torch thread each: the four tiny runs take well under a second
    # each, so the bench is quick; the last one finishes at least a run after the first.
    return [
        sys.executable,
        "-c",
        LAUNCH,
        "bench",
        "--suite",
        "smoke",
        "--workers",
        "2",
        "--db",
        str(db),
        "--json",
    ]


def _interrupt_mid_bench(tmp_path: Path, sig: int, tries: int = 3) -> tuple[Path, str]:
    """Start a bench, send ``sig`` as soon as its first run is stored; the database and the
    bench's stderr. The signal must land before the last run is stored; if the bench was
    faster than this process's polling, the scenario is played again on a fresh database."""
    for attempt in range(tries):
        db = tmp_path / f"r{attempt}.db"
        proc = subprocess.Popen(_bench_args(db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_first_completed(db, proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        if len(_completed(db)) < len(SMOKE_HASHES):
            if sig == signal.SIGINT:
                assert proc.returncode == 130, err
            return db, err
    pytest.fail(f"in {tries} tries every run completed before the signal could land")


def _rows(db: Path) -> list[tuple[str, str, str, str | None]]:
    """(run_id, config_hash, status, error) of every stored run; [] before the schema exists."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute("SELECT run_id, config_hash, status, error FROM runs").fetchall()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # no file or no table yet
        return []


def _wait_for_first_completed(db: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r[2] == "completed" for r in _rows(db)):
            return
        if proc.poll() is not None:
            pytest.fail(f"bench ended before the first run was stored: {proc.communicate()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail("no run completed in time")


def _completed(db: Path) -> dict[str, str]:
    return {r[1]: r[0] for r in _rows(db) if r[2] == "completed"}  # hash -> run id


def test_sigkilled_bench_resumes_without_duplicates(tmp_path):
    db, _ = _interrupt_mid_bench(tmp_path, signal.SIGKILL)
    done_before = _completed(db)
    assert done_before
    assert {r[2] for r in _rows(db)} == {"completed", "running"}  # the rest left "running"

    out = subprocess.run(_bench_args(db), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["skipped"] == len(done_before)
    assert summary["completed"] == len(SMOKE_HASHES) - len(done_before)
    rows = _rows(db)
    assert sorted(r[1] for r in rows) == sorted(SMOKE_HASHES)  # each config exactly once
    assert {r[2] for r in rows} == {"completed"}
    assert done_before.items() <= _completed(db).items()  # finished runs kept, not redone


def test_ctrl_c_marks_unfinished_runs_failed_and_the_next_bench_reruns_them(tmp_path):
    db, err = _interrupt_mid_bench(tmp_path, signal.SIGINT)
    assert "run the same command again to resume" in err
    done_before = _completed(db)
    assert done_before
    rest = [r for r in _rows(db) if r[2] != "completed"]
    assert rest and all(r[2] == "failed" and r[3].startswith("interrupted") for r in rest)

    store = ResultsStore(db)
    again = run_bench("smoke", store, InlineExecutor(), progress=False)
    assert (again.skipped, again.completed) == (len(done_before), len(rest))
    rows = _rows(db)
    assert sorted(r[1] for r in rows) == sorted(SMOKE_HASHES)
    assert {r[2] for r in rows} == {"completed"}


class InterruptedAfterWrite(ResultsStore):
    """A store whose first record write lands, then Ctrl-C arrives (before the driver
    returns from the write)."""

    def write_record(self, record):
        super().write_record(record)
        if record.status == "completed":
            raise KeyboardInterrupt


def test_ctrl_c_just_after_a_record_is_stored_keeps_that_record(tmp_path):
    store = InterruptedAfterWrite(tmp_path / "r.db")
    with pytest.raises(KeyboardInterrupt):
        run_bench("smoke", store, InlineExecutor(), progress=False)
    rows = _rows(tmp_path / "r.db")
    assert sorted(r[2] for r in rows) == ["completed", "failed", "failed", "failed"]
    assert all(r[3].startswith("interrupted") for r in rows if r[2] == "failed")


class InlineExecutor:
    name = "inline"

    def run(self, jobs, on_record):
        for job in jobs:
            on_record(run_job(job))


def slow_job(marker_dir: str, job: Job):
    """Announce the worker's start, then 'train' for 30 s and leave a file if it finished."""
    Path(marker_dir, "started").touch()
    time.sleep(30)
    Path(marker_dir, f"finished-{job.run_id}").touch()


def test_ctrl_c_stops_local_workers_at_once(tmp_path):
    # A pool left to shut down normally would wait for its running jobs (here 30 s each)
    # and they would finish; the executor must terminate them instead.
    jobs, _ = plan_jobs("smoke", ResultsStore(tmp_path / "r.db"))
    executor = LocalExecutor(2, job_fn=functools.partial(slow_job, str(tmp_path)))
    marker = tmp_path / "started"

    def interrupt_when_started():
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)  # a real signal wakes the driver's blocking wait

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt_when_started, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            executor.run(jobs, on_record=lambda record: None)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert marker.exists()
    assert not list(tmp_path.glob("finished-*"))


def test_overrides_apply_to_every_run_and_make_a_separate_set(tmp_path):
    plain, _ = plan_jobs("smoke", ResultsStore(tmp_path / "a.db"))
    budget, _ = plan_jobs("smoke", ResultsStore(tmp_path / "b.db"), ["train.epochs=1", "train.max_seconds=5"])
    assert [j.config["train"]["epochs"] for j in budget] == [1, 1, 1, 1]
    assert {j.config["train"]["max_seconds"] for j in budget} == {5}
    assert not {j.config_hash for j in plain} & {j.config_hash for j in budget}  # other runs
    with pytest.raises(ConfigError, match="train.epochs"):
        plan_jobs("smoke", ResultsStore(tmp_path / "c.db"), ["train.epochs=0"])
