"""Benchmark driver: suites run through an executor, the driver stores, resume skips."""

from __future__ import annotations

import pytest

from memzoo.errors import ConfigError
from memzoo.results.store import ResultsStore
from memzoo.sweep.executors import LocalExecutor
from memzoo.sweep.jobs import Job, run_job
from memzoo.sweep.runner import plan_jobs, run_bench
from memzoo.sweep.suites import suite_configs, suite_names


class InlineExecutor:
    """Runs jobs in this process (the executor interface without processes)."""

    name = "inline"

    def run(self, jobs, on_record):
        for job in jobs:
            on_record(run_job(job))


def test_smoke_suite_on_two_local_workers_then_resume(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    summary = run_bench("smoke", store, LocalExecutor(workers=2), progress=False)
    assert (summary.total, summary.completed, summary.failed) == (4, 4, 0)
    runs = store.runs(suite="smoke")
    assert len(runs) == 4 and all(r.status == "completed" and r.curve for r in runs)
    again = run_bench("smoke", store, InlineExecutor(), progress=False)
    assert (again.skipped, again.completed) == (4, 0)
    assert len(store.runs(suite="smoke")) == 4


def test_interrupted_run_is_rerun_not_duplicated(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    jobs, _ = plan_jobs("smoke", store)  # claims all four as "running", then "dies"
    assert len(store.runs(status="running")) == 4
    summary = run_bench("smoke", store, InlineExecutor(), progress=False)
    assert summary.completed == 4
    runs = store.runs(suite="smoke")
    assert len(runs) == 4 and {r.status for r in runs} == {"completed"}
    assert {r.config_hash for r in runs} == {j.config_hash for j in jobs}


def test_failed_job_becomes_failed_record():
    config = suite_configs("smoke")[0].model_dump(mode="json")
    config["model"]["layers"] = ["not_a_layer"]  # fails inside the worker
    record = run_job(Job("x1", config, "smoke"))
    assert record.status == "failed" and "not_a_layer" in record.error


def test_suites_are_valid_and_unknown_suite_is_clear():
    assert {"quick", "smoke"} <= set(suite_names())
    quick = suite_configs("quick")
    layers = {c.model.layers[0] for c in quick}
    expected = {"attention", "sliding_window", "rnn", "lstm", "gru", "deltanet", "mlstm", "linear_attention"}
    assert expected <= layers and "attention_lstm" not in layers  # the seed classifier is in apps
    with pytest.raises(ConfigError, match="unknown suite 'nope'"):
        suite_configs("nope")


def test_suites_budget_steps_and_frontier_covers_every_width_and_three_learning_rates():
    quick = suite_configs("quick")
    assert len(quick) == 2 * len({c.model.layers[0] for c in quick})  # two seeds per layer
    assert all(c.train.max_steps and c.train.max_seconds is None for c in quick)  # work, not time
    for name in ("frontier", "frontier_cpu"):
        configs = suite_configs(name)
        assert len({c.train.lr for c in configs}) >= 3
        assert all(c.train.max_seconds is None for c in configs)
    frontier = suite_configs("frontier")
    assert {c.model.d_model for c in frontier} == {32, 64, 128, 256}
    assert {c.task.params()["seq_len"] for c in frontier} == {256}


def test_the_log_gets_a_line_per_finished_run(tmp_path, capsys):
    """Written to a file (not a terminal) the progress bar shows only at the end: a line per
    finished run is what a long sweep's log shows meanwhile."""
    store = ResultsStore(tmp_path / "r.db")
    run_bench("smoke", store, InlineExecutor(), progress=True)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[")]
    assert [line.split()[0] for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    stored = {r.run_id: r for r in store.runs(suite="smoke")}
    for line in lines:
        status, run_id = line.split()[1:3]
        assert status == "completed" and run_id in stored
        assert f"accuracy {stored[run_id].metrics['accuracy']:.3f}" in line and " steps, " in line
