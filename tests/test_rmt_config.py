"""RMT (``RecurrentMemoryModel``) reachable from configs: ``model.rmt`` validated in one line,
built by ``build_model`` with the run's segment length, whole == chunked through that path,
the bytes it carries across a boundary, a checkpoint that loads back, the report's names and
the ``longterm`` suite's rows."""

from __future__ import annotations

import pytest
import torch
from contract import max_rel_err

from memzoo.errors import ConfigError
from memzoo.models import SegmentRunner, SequenceModel
from memzoo.models.recurrent_memory import RecurrentMemoryModel
from memzoo.report.variants import memory_name, run_labels
from memzoo.results.record import RunRecord
from memzoo.results.store import ResultsStore
from memzoo.sweep.suites import suite_configs
from memzoo.sweep.suites.longterm import RMT_LONG_DISTANCE, RMT_NUM_MEMORY, RMT_TRAIN, longterm_recall_models
from memzoo.train import build_config, fit
from memzoo.train.loading import load
from memzoo.train.recipes.single_task import build_model

D, M, L = 16, 2, 8
RECALL = [
    "task.name=cross_segment_recall",
    "task.vocab_size=16",
    "task.num_kv_pairs=2",
    "task.distance=10",
    f"task.segment_len={L}",
    "task.distractors=separate",
    "task.distractor_vocab_size=4",
    "model.layers=[sliding_window,attention]",
    'model.layer_options={"sliding_window": {"window": 4}}',
    f"model.d_model={D}",
    "train.num_train=32",
    "train.num_validation=16",
    "train.num_test=16",
    "train.batch_size=16",
    "train.checkpoint=false",
]


def rmt_config(*overrides: str):
    return build_config(overrides=[*RECALL, f"model.rmt={{num_memory: {M}}}", *overrides])


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("model.rmt={num_memory: -1}", "model.rmt.num_memory"),
        ("model.rmt={num_memory: 2, segment_len: 0}", "model.rmt.segment_len"),
        ("model.rmt={slots: 2}", "model.rmt.slots"),
        ("model.rmt=8", "model.rmt"),
    ],
)
def test_bad_rmt_sections_are_refused_naming_the_field(override, field):
    with pytest.raises(ConfigError, match=rf"^{field}: ") as err:
        build_config(overrides=[*RECALL, override])
    assert "\n" not in str(err.value)


def test_the_reset_ablation_is_refused_with_rmt_whose_ablation_is_num_memory_0():
    with pytest.raises(ConfigError, match=r"model.rmt.num_memory=0"):
        rmt_config("model.reset_long_term_memory=true")
    with pytest.raises(ConfigError, match="num_memory=0"):
        RecurrentMemoryModel(layers=["gru"], d_model=8, vocab_size=4, reset_long_term_memory=True)


def test_a_plain_stack_dumps_as_before_so_stored_hashes_stay():
    assert "rmt" not in build_config(overrides=RECALL).model_dump(mode="json")["model"]
    assert rmt_config().model_dump(mode="json")["model"]["rmt"] == {"num_memory": M, "segment_len": None}


def test_segment_lengths_that_disagree_are_refused_before_a_record_is_stored(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    for overrides, named in (
        (
            ["model.rmt={num_memory: 2, segment_len: 4}"],
            "model.rmt.segment_len=4 differs from task.segment_len=8",
        ),
        (
            ["model.rmt={num_memory: 2, segment_len: 8}", "train.segment_len=16"],
            "model.rmt.segment_len=8 differs from train.segment_len=16",
        ),
    ):
        with pytest.raises(ConfigError, match=named):
            fit(rmt_config(*overrides), store=store, progress=False)
    assert store.runs() == []
    # Equal lengths, or the model's taken from the run, are accepted.
    cfg = rmt_config("train.segment_len=8", "model.rmt={num_memory: 2, segment_len: 8}")
    assert build_model(cfg, cfg.task.build()).segment_len == L


def test_rmt_without_any_segment_length_and_rmt_in_other_run_kinds_are_refused():
    cfg = build_config(overrides=["task.name=mqar", "model.rmt={num_memory: 2}", "train.num_train=8"])
    with pytest.raises(ConfigError, match="model.rmt needs a segment length"):
        fit(cfg, progress=False)
    multitask = build_config(
        overrides=[
            "task.name=multitask",
            "task.tasks=[{name: mqar}, {name: copy}]",
            "model.rmt={num_memory: 2, segment_len: 8}",
        ]
    )
    with pytest.raises(ConfigError, match="model.rmt: task 'multitask'"):
        fit(multitask, progress=False)


def test_build_model_gives_rmt_with_the_tasks_segments_and_whole_equals_chunked():
    cfg = rmt_config()
    task = cfg.task.build()
    torch.manual_seed(0)
    model = build_model(cfg, task).eval()
    assert type(model) is RecurrentMemoryModel and (model.segment_len, model.num_memory) == (L, M)
    assert type(build_model(build_config(overrides=RECALL), task)) is SequenceModel
    x = task.generate(3, seed=1).inputs  # [3, 22]: three segments, the last one partial
    with torch.no_grad():
        whole, state = model(x)
        pieces = [model(x[:, :5]), None]
        pieces[1] = model(x[:, 5:], pieces[0][1])
        by_runner, _ = SegmentRunner(model, L)(x)
    assert max_rel_err(torch.cat([pieces[0][0], pieces[1][0]], dim=1), whole) <= 1e-5
    assert max_rel_err(by_runner, whole) <= 1e-5
    assert max_rel_err(pieces[1][1].memory, state.memory) <= 1e-5


def test_the_bytes_across_a_boundary_are_the_memory():
    cfg = rmt_config("train.max_steps=1")
    result = fit(cfg, progress=False)
    assert result.metrics["state_bytes_at_boundary"] == 4 * M * D  # [M, D] fp32 per sequence
    model = result.model
    assert model.boundary_state_size(2 * L) == 4 * M * D
    assert model.boundary_state_size(L // 2) == model.state_size(L // 2)  # a cut segment is carried
    ablation = build_model(rmt_config("model.rmt={num_memory: 0}"), cfg.task.build())
    assert ablation.boundary_state_size(L) == 0  # segments do not communicate


@pytest.mark.parametrize("rmt", ["{num_memory: 2}", "{num_memory: 2, segment_len: 8}"])
def test_a_checkpoint_of_an_rmt_run_loads_back_with_the_same_outputs(tmp_path, rmt):
    cfg = rmt_config(
        f"model.rmt={rmt}", "train.max_steps=1", "train.checkpoint=true", f"train.out_dir={tmp_path}"
    )
    result = fit(cfg, progress=False)
    loaded = load(result.checkpoint_dir)
    assert type(loaded) is RecurrentMemoryModel and (loaded.segment_len, loaded.num_memory) == (L, M)
    x = cfg.task.build().generate(4, seed=5).inputs
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], result.model.eval()(x)[0])


def _record(run_id: str, layers: list[str], **model) -> RunRecord:
    config = {"task": {"name": "t"}, "model": {"layers": layers, "d_model": 64, **model}}
    return RunRecord(
        run_id=run_id, config=config, config_hash=run_id, status="completed", task="t", layers=layers
    )


def test_the_report_names_rmt_and_the_per_layer_memory_tokens_as_what_they_are():
    base = ["sliding_window", "attention"]
    runs = [
        _record("rmt", base, rmt={"num_memory": 8, "segment_len": None}),
        _record("off", base, rmt={"num_memory": 0, "segment_len": None}),
        _record("plain", base),
        _record("layer", ["sliding_window", "memory_tokens"]),
        _record("reset", ["sliding_window", "memory_tokens"], reset_long_term_memory=True),
    ]
    assert run_labels(runs) == {
        "rmt": "RMT (8 memory tokens through the stack): sliding_window+attention",
        "off": "RMT (0 memory tokens through the stack): sliding_window+attention",
        "plain": "sliding_window+attention",
        "layer": "sliding_window+memory tokens (per layer)",
        "reset": "sliding_window+memory tokens (per layer) (memory reset every segment)",
    }
    assert (
        memory_name(runs[0]) == "RMT: sliding_window+attention"
        and memory_name(runs[2]) == "sliding_window+attention"
    )


def test_the_longterm_suite_has_rmt_rows_beside_their_ablation_with_the_curriculum():
    recall = [c for c in suite_configs("longterm") if c.task.name == "cross_segment_recall"]
    shared = recall[0].task.build()  # the task of every other row
    rmt = [c for c in recall if c.model.rmt is not None]
    assert len(rmt) == 6 and all(c.train.seed in (0, 1) for c in rmt)
    for cfg in rmt:
        task = cfg.task.build()
        assert build_model(cfg, task).segment_len == task.segment_len == 64
        assert task.test_distances == shared.test_distances and cfg.train.tbptt_segments >= 5
        curriculum = cfg.train.curriculum
        assert curriculum.param == "max_distance"
        if task == shared:  # RMT and its ablation: the comparison's task, segments 1, 2, then 5
            assert curriculum.model_dump() == RMT_TRAIN["curriculum"]
        else:  # trained on to 16x the window: segments 1, 2, 4, then 9
            assert (
                task.max_distance == RMT_LONG_DISTANCE == 512 and cfg.model.rmt.num_memory == RMT_NUM_MEMORY
            )
            assert curriculum.values == [48, 112, 240] and curriculum.epochs_per_stage == 6
    on_shared = sorted(c.model.rmt.num_memory for c in rmt if c.task.build() == shared)
    assert on_shared == [0, 0, RMT_NUM_MEMORY, RMT_NUM_MEMORY]
    plain = [c for c in recall if c.model.rmt is None]
    assert len(plain) == 2 * len(longterm_recall_models())  # the other rows are unchanged
    assert all(c.task.build() == shared for c in plain)


def test_rmt_rows_trained_to_another_distance_are_a_row_of_their_own():
    base = ["sliding_window", "attention"]
    rmt = {"num_memory": 8, "segment_len": None}
    runs = [_record("a", base, rmt=rmt), _record("b", base, rmt=rmt)]
    runs[1].config["task"]["max_distance"] = 512
    runs[0].config["task"]["max_distance"] = 256
    assert run_labels(runs) == {
        "a": "RMT (8 memory tokens through the stack): sliding_window+attention (trained to distance 256)",
        "b": "RMT (8 memory tokens through the stack): sliding_window+attention (trained to distance 512)",
    }
