"""Failure handling in training: resuming a run after an interruption, and divergence."""

from __future__ import annotations

import json

import pytest
import torch

import memzoo
from memzoo.results.store import ResultsStore
from memzoo.train import build_config, run_loop, segmented
from memzoo.train.resume import LAST, TRAIN_STATE, load_resume_point
from memzoo.train.run_kinds import resume_run

TINY = [
    "task.name=mqar",
    "task.vocab_size=32",
    "task.seq_len=16",
    "task.num_kv_pairs=2",
    "model.layers=[gru]",
    "model.d_model=16",
    "train.num_train=128",
    "train.num_test=64",
    "train.epochs=4",
    "train.batch_size=32",
    "train.warmup_fraction=0.2",
]


class Interrupted(Exception):
    """Stands for a killed process: raised right after an epoch's state was saved."""


def tiny_config(tmp_path, *extra):
    return build_config(overrides=[*TINY, f"train.out_dir={tmp_path / 'runs'}", *extra])


def without_seconds(curve):
    return [{k: v for k, v in p.items() if k != "seconds"} for p in curve]


def test_resume_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path / "r.db")
    whole = memzoo.fit(tiny_config(tmp_path), store=store)

    real_save = run_loop.save_resume_point

    def save_then_die(run_dir, model, meta, point, *states):
        real_save(run_dir, model, meta, point, *states)
        if point.epoch == 2:
            raise Interrupted

    monkeypatch.setattr(run_loop, "save_resume_point", save_then_die)
    with pytest.raises(Interrupted):
        memzoo.fit(tiny_config(tmp_path), store=store, run_id="cut")
    monkeypatch.undo()
    cut = store.get("cut")
    # The process went on after the crash, so the row says so (a killed one stays "running").
    assert cut.status == "failed" and "Interrupted" in cut.error
    assert [p["epoch"] for p in cut.curve] == [1, 2]

    resumed = resume_run("cut", store=store)
    assert resumed.run_id == "cut" and resumed.status == "completed"
    stored = store.get("cut")
    assert stored.status == "completed"
    assert without_seconds(stored.curve) == without_seconds(store.get(whole.run_id).curve)
    assert [p["epoch"] for p in stored.curve] == [1, 2, 3, 4]
    assert stored.curve[-1]["steps"] == 4 * 4
    assert resumed.metrics == whole.metrics
    final_whole, final_resumed = whole.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(final_whole[k], final_resumed[k]) for k in final_whole)


def test_train_state_loads_without_pickled_code(tmp_path):
    result = memzoo.fit(tiny_config(tmp_path, "train.epochs=1"))
    path = result.checkpoint_dir / LAST / TRAIN_STATE
    state = torch.load(path, weights_only=True)  # refuses anything but tensors and containers
    assert state["epoch"] == 1 and state["step"] == 4
    point, weights = load_resume_point(result.checkpoint_dir)
    assert point.epoch == 1 and set(weights) == set(result.model.state_dict())
    assert (result.checkpoint_dir / "model.safetensors").is_file()  # the best checkpoint stays


def test_resume_extends_a_finished_run_from_the_cli(tmp_path, monkeypatch, capsys):
    from test_cli import run_main

    db, out = str(tmp_path / "r.db"), f"train.out_dir={tmp_path / 'runs'}"
    code, stdout, _ = run_main(
        monkeypatch, capsys, ["train", *TINY, "train.epochs=1", out, "--db", db, "--json"]
    )
    run_id = json.loads(stdout.strip().splitlines()[-1])["run_id"]
    code, stdout, _ = run_main(
        monkeypatch, capsys, ["train", "--resume", run_id, "train.epochs=2", "--db", db, "--json"]
    )
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert code == 0 and summary["run_id"] == run_id and summary["status"] == "completed"
    assert [p["epoch"] for p in ResultsStore(db).get(run_id).curve] == [1, 2]
    code, _, err = run_main(monkeypatch, capsys, ["train", "--resume", "nope", "--db", db])
    assert code == 2 and "no run 'nope'" in err


def test_non_finite_loss_stops_the_run_as_diverged(tmp_path, monkeypatch):
    real_loss, calls = segmented.training_loss, []

    def loss_that_blows_up(model, inputs, targets):
        calls.append(1)
        loss = real_loss(model, inputs, targets)
        return loss * float("nan") if len(calls) == 7 else loss

    monkeypatch.setattr(segmented, "training_loss", loss_that_blows_up)
    store = ResultsStore(tmp_path / "r.db")
    result = memzoo.fit(tiny_config(tmp_path), store=store)
    assert result.status == "diverged"
    assert "non-finite loss nan at step 7 (epoch 2)" == result.record.error
    stored = store.get(result.run_id)
    assert stored.status == "diverged" and stored.error == result.record.error
    assert [p["epoch"] for p in stored.curve] == [1]  # the diverged epoch is not in the curve


def test_huge_learning_rate_diverges(tmp_path):
    result = memzoo.fit(tiny_config(tmp_path, "train.lr=1e30", "train.grad_clip=1e30"))
    assert result.status == "diverged" and "non-finite loss" in result.record.error
