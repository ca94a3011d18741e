"""``memzoo profile --whole-run``: a whole run's wall time split into its phases, every phase
that ran measured, the run's metrics those of an ordinary run, and nothing left on disk."""

from __future__ import annotations

import os

from typer.testing import CliRunner

import memzoo
from memzoo.cli.main import app
from memzoo.speed.run_phases import phase_seconds, profile_run
from tests.test_cli import run_main
from tests.test_profile import SMALL_DATA, TINY

RUN = [*TINY, *SMALL_DATA, "train.max_steps=16", "train.seed=3"]


def test_every_phase_of_a_run_is_measured_and_the_metrics_are_the_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default out_dir would land here: it must not
    config = memzoo.train.build_config({}, [*RUN, "train.checkpoint=true", "train.trackers=[tensorboard]"])
    phases = profile_run(config)
    seconds = phases.seconds
    assert list(seconds) == ["data", "training steps", "validation", "test", "checkpoints", "other"]
    assert all(seconds[p] > 0 for p in ("data", "training steps", "validation", "test", "checkpoints"))
    assert abs(sum(seconds.values()) - phases.total) < 1e-6 and phases.steps == 16
    plain = memzoo.fit(
        memzoo.train.build_config({}, [*RUN, "train.checkpoint=false", f"train.out_dir={tmp_path}"])
    )
    assert phases.metrics == plain.metrics
    assert os.listdir(tmp_path) == []  # the checkpoints went to a removed temporary folder


def test_a_checkpoint_inside_a_resume_point_is_counted_once():
    def entry(name, ct, callers=None):
        return ("memzoo/train/checkpoint.py", 1, name), (1, 1, 0.0, ct, callers or {})

    resume_key = ("memzoo/train/resume.py", 85, "save_resume_point")
    select_key = ("memzoo/train/run_loop.py", 224, "_select")
    stats = dict(
        [
            entry("save_checkpoint", 5.0, {resume_key: (2, 2, 0.0, 3.0), select_key: (1, 1, 0.0, 2.0)}),
            (resume_key, (2, 2, 0.1, 4.0, {})),
        ]
    )
    assert phase_seconds(stats)["checkpoints"] == 6.0  # 4.0 (resume points, their checkpoints in) + 2.0


def test_the_cli_prints_the_phase_table(monkeypatch, capsys):
    result = CliRunner().invoke(app, ["profile", *RUN, "--whole-run"])
    assert result.exit_code == 0, result.output
    for phase in ("data", "training steps", "validation", "test", "other", "total"):
        assert phase in result.output
    assert "completed after 16 steps (nothing stored)" in result.output
    code, _, err = run_main(monkeypatch, capsys, ["profile", *RUN, "--whole-run", "--trace", "t.json"])
    assert code == 2 and "--whole-run" in err
