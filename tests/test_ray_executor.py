"""Ray executor: a 4-run bench on a local 2-CPU Ray instance (joined from the CLI), retries.

Ray starts once for the module (``ray_instance``); every test that needs it is skipped when
Ray is not installed. The test without Ray runs everywhere.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memzoo.results.record import RunRecord
from memzoo.results.store import ResultsStore
from memzoo.sweep.jobs import Job, run_job
from memzoo.sweep.runner import plan_jobs
from memzoo.sweep.suites import suite_configs


@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray")
    # Workers cannot import this test module by name: ship its functions by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


def _key(job: Job) -> str:
    return f"{job.config['model']['layers'][0]}-{job.config['train']['seed']}"


def scripted_job(attempt_dir: str, plan: dict[str, str], job: Job) -> RunRecord:
    """``run_job`` with scripted failures, keyed by ``layer-seed``; every attempt leaves a
    file ``<key>.<n>`` in ``attempt_dir`` so the test can count attempts.

    ``raise``: raises on every attempt; ``crash_once``: the worker process dies on the first
    attempt; ``failed_once``: the first attempt returns a ``failed`` record (a bad layer)."""
    key = _key(job)
    attempt = len(list(Path(attempt_dir).glob(f"{key}.*"))) + 1
    Path(attempt_dir, f"{key}.{attempt}").touch()
    mode = plan.get(key)
    if mode == "raise":
        raise RuntimeError(f"scripted failure, attempt {attempt}")
    if mode == "crash_once" and attempt == 1:
        os._exit(3)
    if mode == "failed_once" and attempt == 1:
        broken = {**job.config, "model": {**job.config["model"], "layers": ["no_such_layer"]}}
        return run_job(Job(job.run_id, broken, job.suite))
    return run_job(job)


def test_failed_runs_are_retried_then_recorded_and_the_sweep_goes_on(ray_instance, tmp_path):
    from memzoo.sweep.ray_executor import RayExecutor

    plan = {"lstm-0": "raise", "lstm-1": "failed_once", "gru-0": "crash_once"}
    job_fn = functools.partial(scripted_job, str(tmp_path), plan)
    jobs, _ = plan_jobs("smoke", ResultsStore(tmp_path / "r.db"))
    events: list[tuple[str, str]] = []
    records: dict[str, RunRecord] = {}

    def on_start(job):
        events.append(("start", _key(job)))

    def on_record(record):
        key = f"{record.layers[0]}-{record.config['train']['seed']}"
        events.append(("record", key))
        records[key] = record

    RayExecutor(retries=2, job_fn=job_fn).run(jobs, on_record, on_start=on_start)

    attempts = {k: len(list(tmp_path.glob(f"{k}.*"))) for k in ("lstm-0", "lstm-1", "gru-0", "gru-1")}
    assert attempts == {"lstm-0": 3, "lstm-1": 2, "gru-0": 2, "gru-1": 1}
    assert records["lstm-0"].status == "failed"
    assert "failed 3 attempts" in records["lstm-0"].error
    assert "scripted failure, attempt 3" in records["lstm-0"].error
    assert {records[k].status for k in ("lstm-1", "gru-0", "gru-1")} == {"completed"}
    # each job: one start notice, then one record
    for key in attempts:
        assert [e for e in events if e[1] == key] == [("start", key), ("record", key)]


def test_smoke_bench_joins_the_ray_instance_and_stores_four_completed_runs(ray_instance, tmp_path):
    # The CLI in a second process joins the module's 2-CPU instance (--ray-address), as it
    # would join a cluster; the driver writes every record it gets back from the workers.
    address = ray_instance.get_runtime_context().gcs_address
    db = tmp_path / "r.db"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "memzoo",
            "bench",
            "--suite",
            "smoke",
            "--ray-address",
            address,
            "--db",
            str(db),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert (summary["total"], summary["completed"], summary["failed"]) == (4, 4, 0)
    runs = ResultsStore(db).runs(suite="smoke")
    assert len(runs) == 4 and {r.status for r in runs} == {"completed"}
    assert all(len(r.curve) == 2 and r.device == "cpu" for r in runs)  # curves came back


def test_gpu_is_requested_for_cuda_runs_only(ray_instance):
    from memzoo.sweep.ray_executor import RayExecutor

    config = suite_configs("smoke")[0].model_dump(mode="json")
    executor = RayExecutor()

    def job(device):
        return Job("j", {**config, "train": {**config["train"], "device": device}}, "smoke")

    assert executor._wants_gpu(job("cuda"), cluster_gpus=0)
    assert not executor._wants_gpu(job("cpu"), cluster_gpus=4)
    assert executor._wants_gpu(job("auto"), cluster_gpus=1)
    assert not executor._wants_gpu(job("auto"), cluster_gpus=0)


def test_without_ray_the_cli_says_how_to_install_it(tmp_path):
    script = (
        "import sys; sys.modules['ray'] = None\n"  # as if Ray were not installed
        "from memzoo.cli.main import main\n"
        "sys.argv = ['memzoo', 'bench', '--suite', 'smoke', '--ray', '--db', sys.argv[1]]\n"
        "main()\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "r.db")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: Ray is not installed; install it with: pip install 'memzoo[ray]'"
    ]
    assert not (tmp_path / "r.db").exists()
