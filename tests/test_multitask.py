"""Multi-task training: one shared trunk with a head per task learns two tasks; the trunk is one
set of parameters; checkpoints load; bad configs fail naming the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import memzoo
from memzoo.errors import ConfigError
from memzoo.models.multi_head import MultiHeadModel, TaskIO
from memzoo.results.store import ResultsStore
from memzoo.train import build_config, evaluate
from memzoo.train.objectives import training_loss
from memzoo.train.recipes.multitask import batch_schedule, build_multi_head_model

MQAR = "{name: mqar, vocab_size: 64, seq_len: 32, num_kv_pairs: 4}"
TEXT = "{name: text_classify, seq_len: 16}"
TINY = [
    "task.name=multitask",
    f"task.tasks=[{MQAR}, {TEXT}]",
    "model.layers=[gru]",
    "model.d_model=16",
    "train.num_train=64",
    "train.num_test=32",
    "train.epochs=2",
]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_shared_model_learns_recall_and_classification(tmp_path):
    """Two attention blocks (d_model 64) shared by MQAR (lm head, 64 tokens) and text
    classification (classify head, its own vocabulary), 3000 examples each, <= 5 epochs.
    Measured (seeds 0-2): MQAR 0.97-1.0, text 0.985-0.995, in 15-19 s on one core."""
    store = ResultsStore(tmp_path / "r.db")
    cfg = build_config(
        overrides=[
            "task.name=multitask",
            f"task.tasks=[{MQAR}, {TEXT}]",
            "model.layers=[attention,attention]",
            "model.d_model=64",
            "train.num_train=3000",
            "train.num_test=200",
            "train.epochs=5",
            f"train.out_dir={tmp_path / 'runs'}",
        ]
    )
    result = memzoo.fit(cfg, store=store)
    metrics = store.get(result.run_id).metrics
    assert metrics["accuracy/mqar"] >= 0.9, result.record.curve
    assert metrics["accuracy/text_classify"] >= 0.95, result.record.curve
    assert metrics["accuracy"] == pytest.approx(
        (metrics["accuracy/mqar"] + metrics["accuracy/text_classify"]) / 2
    )
    assert metrics["tasks"]["mqar"]["accuracy"] == metrics["accuracy/mqar"]
    # The reloaded checkpoint is the shared model and reproduces the stored per-task scores.
    loaded = memzoo.load(result.checkpoint_dir)
    assert isinstance(loaded, MultiHeadModel) and loaded.labels == ["mqar", "text_classify"]
    test = cfg.task.build().subtasks["mqar"].splits(3000, cfg.train.num_validation, 200, seed=0).test
    view = loaded.view("mqar")
    again = evaluate(view, test, "lm", view.head.out_features, torch.device("cpu"))
    assert again["accuracy"] == metrics["accuracy/mqar"]  # the test metrics of the selected checkpoint


def test_the_trunk_is_one_set_of_parameters_trained_by_every_task():
    cfg = build_config(overrides=TINY)
    subtasks = cfg.task.build().subtasks
    model = build_multi_head_model(cfg, subtasks)
    mqar, text = model.view("mqar"), model.view("text_classify")
    assert mqar.blocks is text.blocks and mqar.norm is text.norm and mqar.embed is not text.embed
    keys = list(model.state_dict())
    assert sum(k.startswith("blocks.0.") for k in keys) == len(list(model.blocks[0].state_dict()))
    assert {k.split(".")[0] for k in keys} == {"blocks", "norm", "embeds", "heads"}
    assert model.num_params() == sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
    assert model.embeds["text_classify"].num_embeddings == subtasks["text_classify"].input_vocab_size
    assert model.heads["text_classify"].out_features == 2 and text.head_kind == "classify"
    # One task's loss trains the shared trunk and its own embedding/head, not the other task's.
    train, _ = subtasks["mqar"].split(8, 0, seed=0)
    training_loss(mqar, train.inputs, train.targets).backward()
    trunk_grads = [p.grad for p in model.blocks.parameters()]
    assert all(g is not None for g in trunk_grads) and any(g.abs().sum() > 0 for g in trunk_grads)
    assert model.embeds["mqar"].weight.grad is not None
    assert model.heads["text_classify"].weight.grad is None
    assert model.embeds["text_classify"].weight.grad is None


def test_curve_metrics_store_and_cli_example(tmp_path, monkeypatch, capsys):
    from test_cli import run_main

    db = str(tmp_path / "r.db")
    code, stdout, _ = run_main(
        monkeypatch,
        capsys,
        [
            "train",
            "--config",
            str(EXAMPLES / "multitask.yaml"),
            "model.d_model=16",
            "train.num_train=64",
            "train.num_test=32",
            "train.epochs=2",
            f"train.out_dir={tmp_path / 'runs'}",
            "--db",
            db,
            "--json",
        ],
    )
    assert code == 0, stdout
    summary = json.loads(stdout.strip().splitlines()[-1])
    stored = ResultsStore(db).get(summary["run_id"])
    assert stored.status == "completed" and stored.task == "multitask"
    labels = ("mqar", "copy", "text_classify")
    for point in stored.curve:
        assert {f"accuracy/{label}" for label in labels} | {"accuracy", "train_loss/copy"} <= set(point)
        assert point["accuracy"] == pytest.approx(sum(point[f"accuracy/{x}"] for x in labels) / 3)
    assert set(stored.metrics["tasks"]) == set(labels)
    assert stored.curve[-1]["steps"] == 2 * 3 * 2  # 2 epochs x 3 tasks x 2 batches of 32


def test_batch_schedules_show_every_example_once():
    gen = torch.Generator().manual_seed(0)
    rr = batch_schedule({"a": 64, "b": 32, "c": 96}, 32, "round_robin", gen)
    assert [label for label, _ in rr] == ["a", "b", "c", "a", "c", "c"]
    prop = batch_schedule({"a": 64, "b": 32, "c": 96}, 32, "proportional", gen)
    assert sorted(label for label, _ in prop) == ["a", "a", "b", "c", "c", "c"]
    for schedule in (rr, prop):
        rows = torch.cat([r for label, r in schedule if label == "c"])
        assert sorted(rows.tolist()) == list(range(96))


@pytest.mark.parametrize(
    "overrides, words",
    [
        ([f"task.tasks=[{MQAR}]"], ["multitask", "tasks", "at least 2"]),
        ([f"task.tasks=[{MQAR}, {MQAR}]"], ["label", "mqar", "more than once"]),
        ([f"task.tasks=[{MQAR}, {{name: copy, copy_len: 500}}]"], ["tasks[1]", "copy_len"]),
        ([f"task.tasks=[{MQAR}, {{name: copy, bogus: 1}}]"], ["tasks[1]", "bogus"]),
        ([f"task.tasks=[{MQAR}, {{name: multitask}}]"], ["tasks[1]", "multitask"]),
        ([f"task.tasks=[{MQAR}, {{name: translate}}]"], ["tasks[1]", "translate"]),
        ([f"task.tasks=[{MQAR}, {{name: copy, label: a.b}}]"], ["tasks[1].label"]),
        ([f"task.tasks=[{MQAR}, copy]"], ["tasks.1", "dictionary"]),
        (["task.sampling=random"], ["sampling", "round_robin"]),
        (["task.seq_len=8"], ["seq_len", "derived"]),
    ],
)
def test_bad_multitask_configs_name_the_field(overrides, words):
    with pytest.raises(ConfigError) as info:
        build_config(overrides=[*TINY, *overrides])
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_what_a_multitask_run_refuses(tmp_path):
    cfg = build_config(overrides=[*TINY, f"train.out_dir={tmp_path}"])
    spec = cfg.task.build()
    # A run kind, not a Task: it has no data of its own and no registry entry.
    assert not isinstance(spec, memzoo.tasks.Task) and not hasattr(spec, "split")
    assert "multitask" not in memzoo.tasks.names()
    with pytest.raises(ConfigError, match="cannot be resumed"):
        memzoo.fit(cfg, resume_from=tmp_path)
    wrong = MultiHeadModel(layers=["gru"], d_model=16, tasks={"mqar": TaskIO("lm", 64, vocab_size=64)})
    with pytest.raises(ConfigError, match="does not fit"):
        memzoo.fit(cfg, model=wrong)
    with pytest.raises(ConfigError, match="no task 'copy'"):
        wrong.view("copy")
