"""``memzoo profile``: a tiny run's steps under torch.profiler, and the phase labels that any
training run carries (``memzoo.train.phases``)."""

from __future__ import annotations

import json

import torch
from typer.testing import CliRunner

import memzoo
from memzoo.cli.main import app
from memzoo.train.phases import DATA, FORWARD_BACKWARD, OPTIMIZER
from tests.test_cli import run_main

TINY = ["task.name=mqar", "task.seq_len=16", "task.num_kv_pairs=2", "model.d_model=16"]
SMALL_DATA = ["train.num_train=64", "train.num_validation=8", "train.num_test=8", "train.batch_size=8"]


def test_profile_prints_the_operator_table_and_the_phase_shares(tmp_path):
    trace = tmp_path / "trace.json"
    result = CliRunner().invoke(app, ["profile", *TINY, "--steps", "2", "--rows", "5", "--trace", str(trace)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "aten::" in out and FORWARD_BACKWARD in out
    assert "2 steps on cpu" in out
    for phase in ("data batching", "forward/backward", "optimizer step"):
        assert phase in out
    assert "traceEvents" in json.loads(trace.read_text())


def test_profile_runs_across_epochs():
    """More steps than one epoch has batches: the batches go on, epoch after epoch."""
    result = CliRunner().invoke(app, ["profile", *TINY, *SMALL_DATA, "--steps", "10", "--warmup", "0"])
    assert result.exit_code == 0, result.output


def test_bad_profile_options_exit_2_naming_the_field(monkeypatch, capsys):
    for args, named in [
        ([*TINY, "model.d_modle=16"], "d_modle"),
        ([*TINY, "model.d_model=-1"], "model.d_model"),
        ([*TINY, "--sort", "fastest"], "--sort"),
        ([*TINY, "--steps", "0"], "--steps"),
        (["task.name=multitask"], "single-task"),
    ]:
        code, _, err = run_main(monkeypatch, capsys, ["profile", *args])
        assert code == 2 and named in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err


def test_a_training_run_labels_its_phases_for_the_profiler(tmp_path):
    config = memzoo.train.build_config(
        {},
        [*TINY, *SMALL_DATA, "train.max_steps=2", "train.checkpoint=false", f"train.out_dir={tmp_path}"],
    )
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        memzoo.fit(config)
    counts = {event.key: event.count for event in prof.key_averages()}
    assert counts[FORWARD_BACKWARD] == 2 and counts[OPTIMIZER] == 2
    assert counts[DATA] >= 2
