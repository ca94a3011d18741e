"""The training loop: determinism, checkpoints, the store, metrics, and learning MQAR."""

from __future__ import annotations

import math

import pytest
import torch

import memzoo
from memzoo.metrics.classification import MetricAccumulator
from memzoo.results.store import ResultsStore
from memzoo.train import build_config, evaluate

TINY = [
    "task.name=mqar",
    "task.vocab_size=32",
    "task.seq_len=16",
    "task.num_kv_pairs=2",
    "model.layers=[gru]",
    "model.d_model=16",
    "train.num_train=128",
    "train.num_test=64",
    "train.epochs=2",
    "train.batch_size=32",
]


def tiny_config(tmp_path, *extra):
    return build_config(overrides=[*TINY, f"train.out_dir={tmp_path / 'runs'}", *extra])


def test_same_seed_same_metrics(tmp_path):
    a = memzoo.fit(tiny_config(tmp_path))
    b = memzoo.fit(tiny_config(tmp_path))
    assert a.record.curve[-1]["train_loss"] == b.record.curve[-1]["train_loss"]
    assert a.metrics["accuracy"] == b.metrics["accuracy"]
    c = memzoo.fit(tiny_config(tmp_path, "train.seed=5"))
    assert c.record.curve[-1]["train_loss"] != a.record.curve[-1]["train_loss"]


def test_record_fields_and_store(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    result = memzoo.fit(tiny_config(tmp_path), store=store)
    stored = store.get(result.run_id)
    assert stored.status == "completed"
    assert [p["epoch"] for p in stored.curve] == [1, 2]
    assert stored.params == result.model.num_params()
    assert stored.state_bytes == result.model.state_size(16) == 16 * 4  # one GRU block: h [1, 16]
    assert 0.0 <= stored.metrics["accuracy"] <= 1.0
    assert set(stored.metrics) >= {"accuracy", "example_accuracy", "precision", "recall", "f1", "slices"}
    assert all(math.isfinite(p["train_loss"]) for p in stored.curve)


def test_checkpoint_round_trip(tmp_path):
    result = memzoo.fit(tiny_config(tmp_path))
    loaded = memzoo.load(result.checkpoint_dir)
    task = memzoo.tasks.build("mqar", vocab_size=32, seq_len=16, num_kv_pairs=2)
    cfg = tiny_config(tmp_path).train
    parts = task.splits(cfg.num_train, cfg.num_validation, cfg.num_test, seed=0)  # what the run used
    meta = loaded.checkpoint_meta
    assert meta["epoch"] == result.metrics["selected_epoch"] and 1 <= meta["epoch"] <= 2
    assert meta["metrics"]["accuracy"] == result.metrics["validation"]["accuracy"]  # selected on validation
    validation = evaluate(loaded, parts.validation, "lm", task.output_vocab_size, torch.device("cpu"))
    assert validation == meta["metrics"]  # the loaded weights reproduce the selecting metrics exactly
    test = evaluate(loaded, parts.test, "lm", task.output_vocab_size, torch.device("cpu"))
    assert test["accuracy"] == result.metrics["accuracy"]  # and the test metrics stored with the run
    test_data = parts.test
    with torch.no_grad():
        out, _ = loaded(test_data.inputs)
    assert out.shape == (64, 16, task.output_vocab_size)


def test_load_rejects_non_checkpoint(tmp_path):
    with pytest.raises(memzoo.MemzooError, match="not a memzoo checkpoint"):
        memzoo.load(tmp_path)


def test_metrics_by_hand():
    acc = MetricAccumulator(num_classes=3)
    logits = torch.tensor([[[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]]])  # preds 0 1 2 0
    targets = torch.tensor([[0, 1, -100, 1]])
    acc.update(logits, targets, {"n": torch.tensor([7])})
    m = acc.compute()
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["example_accuracy"] == 0.0
    # class 0: P=1/2 R=1; class 1: P=1 R=1/2 -> macro P=R=0.75, F1 = mean(2/3, 2/3)
    assert m["precision"] == pytest.approx(0.75) and m["recall"] == pytest.approx(0.75)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["slices"] == {"n=7": pytest.approx(2 / 3)}


@pytest.mark.slow
def test_attention_learns_mqar(tmp_path):
    """A 2-layer attention model at d_model 64 reaches >= 0.99 on MQAR V=256 L=64 kv=4."""
    cfg = build_config(
        overrides=[
            "task.name=mqar",
            "task.vocab_size=256",
            "task.seq_len=64",
            "task.num_kv_pairs=4",
            "model.layers=[attention,attention]",
            "model.d_model=64",
            "train.checkpoint=false",
            *MQAR_FAST_TRAIN,
        ]
    )
    result = memzoo.fit(cfg)
    assert result.metrics["accuracy"] >= 0.99, result.record.curve


MQAR_FAST_TRAIN = ["train.num_train=10000", "train.epochs=10"]


def test_wall_time_budget_stops_inside_an_epoch(tmp_path):
    """``train.max_seconds`` is a safety cap checked every step: the run evaluates, stops and
    is stored ``truncated`` with the steps it took (not ``completed``)."""
    result = memzoo.fit(
        tiny_config(
            tmp_path,
            "train.epochs=50",
            "train.num_train=4096",
            "train.batch_size=8",
            "train.max_seconds=0.05",
        )
    )
    assert result.status == "truncated" and "train.max_seconds" in result.record.error
    assert len(result.record.curve) == 1
    assert result.record.curve[0]["steps"] < 4096 // 8  # stopped before one epoch's 512 steps
    assert result.metrics["steps"] == result.record.curve[0]["steps"]


def test_a_truncated_run_is_stored_so_and_left_out_of_the_report_tables(tmp_path):
    from memzoo.report.data import ReportData
    from memzoo.results import ResultsStore

    store = ResultsStore(tmp_path / "r.db")
    cut = memzoo.fit(
        tiny_config(tmp_path, "train.num_train=4096", "train.batch_size=8", "train.max_seconds=0.05"),
        store=store,
    )
    whole = memzoo.fit(tiny_config(tmp_path), store=store)
    assert store.get(cut.run_id).status == "truncated" and store.get(whole.run_id).status == "completed"
    scored = {r.run_id for r in ReportData.from_store(store).scored()}
    assert scored == {whole.run_id}  # the truncated run's numbers enter no table or plot


def test_same_config_same_stored_metrics_under_a_competing_busy_process(tmp_path):
    """A step budget, not the clock, ends the run: a spinning second process changes nothing."""
    import subprocess
    import sys

    config = tiny_config(tmp_path, "train.max_steps=6", "train.checkpoint=false")
    idle = memzoo.fit(config)
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = memzoo.fit(config)
    finally:
        spinner.kill()
        spinner.wait()
    assert idle.status == busy.status == "completed" and idle.metrics["steps"] == 6
    strip = ("seconds",)
    assert idle.metrics == busy.metrics
    assert [{k: v for k, v in p.items() if k not in strip} for p in idle.record.curve] == [
        {k: v for k, v in p.items() if k not in strip} for p in busy.record.curve
    ]


@pytest.mark.slow
def test_compiled_training_follows_the_eager_loss_curve(tmp_path):
    """``train.compile=true`` runs the same computation through torch.compile."""
    extra = ("train.epochs=1", "train.checkpoint=false", "model.layers=[attention]", "model.d_model=16")
    eager = memzoo.fit(tiny_config(tmp_path, *extra))
    compiled = memzoo.fit(tiny_config(tmp_path, *extra, "train.compile=true"))
    assert compiled.status == "completed"
    assert compiled.record.curve[-1]["train_loss"] == pytest.approx(
        eager.record.curve[-1]["train_loss"], rel=1e-4
    )
    assert compiled.metrics["accuracy"] == pytest.approx(eager.metrics["accuracy"], abs=0.02)
