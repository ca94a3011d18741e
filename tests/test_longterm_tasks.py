"""Long-term memory tasks: memorization, cross_segment_recall, forgetting_mqar, continual —
their invariants (hypothesis), parameter errors, the facts-seen ceiling, continual metrics."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memzoo import tasks
from memzoo.errors import ConfigError
from memzoo.results.store import ResultsStore
from memzoo.train import build_config, build_model, evaluate, fit
from memzoo.train.recipes.continual import continual_phases, train_continual

IGNORE = -100
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def rows(data):
    return zip(data.inputs.tolist(), data.targets.tolist())


# ---- memorization -------------------------------------------------------------------------


@st.composite
def memorization_params(draw):
    facts = draw(st.integers(1, 40))
    return dict(
        num_facts=facts,
        num_values=draw(st.integers(2, 9)),
        seq_len=2 * draw(st.integers(1, facts)),
        map_seed=draw(st.integers(0, 5)),
    )


@SETTINGS
@given(params=memorization_params(), seed=st.integers(0, 999))
def test_memorization_invariants(params, seed):
    task = tasks.build("memorization", **params)
    f, u = params["num_facts"], params["num_values"]
    other_split = task.generate(4, seed + 1)
    fact = {}
    for inputs, targets in [*rows(task.generate(4, seed)), *rows(other_split)]:
        keys, values = inputs[0::2], inputs[1::2]
        assert all(1 <= k <= f for k in keys) and len(set(keys)) == len(keys)
        assert all(1 + f <= v < 1 + f + u for v in values)
        assert targets[0::2] == values and targets[1::2] == [IGNORE] * len(values)
        for k, v in zip(keys, values):  # one fixed map across examples and seeds
            assert fact.setdefault(k, v) == v
    assert fact == {k: task.fact_values[k - 1].item() for k in fact}
    # The map depends on map_seed only; another map_seed gives another map (when it can).
    again = tasks.build("memorization", **params)
    assert torch.equal(again.fact_values, task.fact_values)


def test_memorization_maps_differ_by_map_seed_and_facts_seen_is_exact():
    a = tasks.build("memorization", num_facts=64, num_values=8, seq_len=8, map_seed=0)
    b = tasks.build("memorization", num_facts=64, num_values=8, seq_len=8, map_seed=1)
    assert not torch.equal(a.fact_values, b.fact_values)
    data = a.generate(5, seed=0)
    shown = {k for inputs in data.inputs.tolist() for k in inputs[0::2]}
    assert a.facts_seen_fraction(data) == len(shown) / 64
    assert a.training_set_metrics(data) == {"facts_seen_fraction": len(shown) / 64}
    assert a.facts_seen_fraction(a.generate(0, seed=0)) == 0.0
    assert a.facts_seen_fraction(a.generate(400, seed=0)) == 1.0


def test_trainer_records_facts_seen_fraction(tmp_path):
    cfg = build_config(
        overrides=[
            "task.name=memorization",
            "task.num_facts=200",
            "task.num_values=4",
            "task.seq_len=8",
            "model.layers=[gru]",
            "model.d_model=16",
            "train.num_train=10",
            "train.num_test=16",
            "train.epochs=1",
            "train.batch_size=8",
            "train.checkpoint=false",
        ]
    )
    result = fit(cfg)
    task = cfg.task.build()
    expected = task.facts_seen_fraction(task.split(10, 16, seed=0)[0])
    assert 0 < expected < 0.25  # 10 examples x 4 keys cannot show 200 facts
    assert result.metrics["facts_seen_fraction"] == expected


# ---- cross_segment_recall -------------------------------------------------------------------


@st.composite
def cross_segment_params(draw):
    k = draw(st.integers(1, 6))
    return dict(
        num_kv_pairs=k,
        vocab_size=draw(st.integers(2 * k + 2, 2 * k + 30)),
        distance=draw(st.integers(0, 50)),
        segment_len=draw(st.integers(2 * k, 40)),
    )


@SETTINGS
@given(params=cross_segment_params(), seed=st.integers(0, 999))
def test_cross_segment_recall_invariants(params, seed):
    task = tasks.build("cross_segment_recall", **params)
    k, v, g = params["num_kv_pairs"], params["vocab_size"], params["distance"]
    assert task.seq_len == 4 * k + g
    data = task.generate(5, seed)
    assert data.slices["distance"].tolist() == [g] * 5
    for inputs, targets in rows(data):
        keys, values = inputs[0 : 2 * k : 2], inputs[1 : 2 * k : 2]
        assert all(1 <= x < v // 2 for x in keys) and len(set(keys)) == k
        assert all(v // 2 <= x < v for x in values) and len(set(values)) == k
        distractors = inputs[2 * k : 2 * k + g]
        assert all(1 <= x < v and x not in keys for x in distractors)
        queries = inputs[2 * k + g :]
        assert sorted(queries[0::2]) == sorted(keys), "every key queried once"
        answer = dict(zip(keys, values))
        scored = [t for t in range(task.seq_len) if targets[t] != IGNORE]
        assert scored == list(range(2 * k + g, task.seq_len, 2))
        for t in scored:
            assert targets[t] == answer[inputs[t]]
            assert inputs[t + 1] == 0, "the input never shows an answer (no recall by elimination)"
            assert t - inputs.index(inputs[t]) >= g + 2, "a query lies >= distance after its pair"


@SETTINGS
@given(
    params=cross_segment_params(),
    extra=st.integers(0, 30),
    separate=st.booleans(),
    u=st.integers(1, 9),
    shown=st.booleans(),
    seed=st.integers(0, 999),
)
def test_cross_segment_recall_separate_distractors_and_distance_range(
    params, extra, separate, u, shown, seed
):
    """Distances drawn from [distance, max_distance], each row padded after its queries;
    separate distractors come only from [V, V + U) and are never scored; with answers_shown
    the token after each query is its answer, otherwise a blank."""
    lo = params["distance"]
    more = dict(max_distance=lo + extra, answers_shown=shown)
    if separate:
        more.update(distractors="separate", distractor_vocab_size=u)
    task = tasks.build("cross_segment_recall", **params, **more)
    k, v = params["num_kv_pairs"], params["vocab_size"]
    assert task.seq_len == 4 * k + lo + extra
    assert task.input_vocab_size == v + (u if separate else 0) and task.output_vocab_size == v
    data = task.generate(6, seed)
    for (inputs, targets), g in zip(rows(data), data.slices["distance"].tolist()):
        assert lo <= g <= lo + extra
        keys, values = inputs[0 : 2 * k : 2], inputs[1 : 2 * k : 2]
        distractors = inputs[2 * k : 2 * k + g]
        if separate:
            assert all(v <= x < v + u for x in distractors)
        else:
            assert all(1 <= x < v and x not in keys for x in distractors)
        queries = inputs[2 * k + g : 4 * k + g]
        assert sorted(queries[0::2]) == sorted(keys)
        assert inputs[4 * k + g :] == [0] * (extra - (g - lo))  # padding after the queries
        answer = dict(zip(keys, values))
        scored = [t for t in range(task.seq_len) if targets[t] != IGNORE]
        assert scored == list(range(2 * k + g, 4 * k + g, 2))
        assert all(targets[t] == answer[inputs[t]] for t in scored)
        assert [inputs[t + 1] for t in scored] == ([targets[t] for t in scored] if shown else [0] * k)


def test_cross_segment_recall_range_covers_several_segment_writes_and_sweeps_exactly():
    task = tasks.build(
        "cross_segment_recall",
        num_kv_pairs=2,
        vocab_size=16,
        distance=8,
        max_distance=40,
        segment_len=8,
        distractors="separate",
        distractor_vocab_size=4,
        test_distances=[64],
    )
    g = task.generate(400, seed=0).slices["distance"]
    writes_between = (4 + g) // 8  # segments completed between the pairs and the queries
    assert int(g.min()) == 8 and int(g.max()) == 40
    assert set(writes_between.tolist()) == {1, 2, 3, 4, 5}
    variant = task.evaluation_sweep()["distance"][64]
    assert variant.max_distance is None and variant.distance == 64 and variant.seq_len == 4 * 2 + 64
    assert variant.distractors == "separate" and variant.distractor_vocab_size == 4
    assert variant.generate(3, seed=1).slices["distance"].tolist() == [64] * 3


# ---- forgetting_mqar -------------------------------------------------------------------------


@st.composite
def forgetting_params(draw):
    k = draw(st.integers(1, 6))
    return dict(
        num_kv_pairs=k,
        seq_len=2 * draw(st.integers(2 * k, 2 * k + 20)),
        vocab_size=draw(st.integers(max(2 * k + 2, 4), 2 * k + 20)),
    )


@SETTINGS
@given(params=forgetting_params(), seed=st.integers(0, 999))
def test_forgetting_mqar_invariants(params, seed):
    task = tasks.build("forgetting_mqar", **params)
    k, t, v = params["num_kv_pairs"], params["seq_len"], params["vocab_size"]
    writes = t // 2 - k
    data = task.generate(5, seed)
    for (inputs, targets), reassigned in zip(rows(data), data.slices["reassigned_keys"].tolist()):
        latest, count = {}, {}
        for key, value in zip(inputs[0 : 2 * writes : 2], inputs[1 : 2 * writes : 2]):
            assert 1 <= key < v // 2 and v // 2 <= value < v
            assert latest.get(key) != value, "a reassignment always changes the value"
            latest[key], count[key] = value, count.get(key, 0) + 1
        assert len(latest) == k and reassigned == sum(c > 1 for c in count.values())
        queries = inputs[2 * writes :: 2]
        assert sorted(queries) == sorted(latest)
        expected = [IGNORE] * t
        for pos in range(2 * writes, t, 2):
            expected[pos] = latest[inputs[pos]]
            assert inputs[pos + 1] == latest[inputs[pos]]
        assert targets == expected


def test_forgetting_mqar_reassigns_keys():
    data = tasks.build("forgetting_mqar", vocab_size=64, seq_len=64, num_kv_pairs=4).generate(50, 0)
    assert float(data.slices["reassigned_keys"].float().mean()) > 3.5  # 28 writes over 4 keys


# ---- continual (the task) ------------------------------------------------------------------


@SETTINGS
@given(n=st.integers(0, 7), seed=st.integers(0, 999), len_a=st.integers(1, 5), len_b=st.integers(3, 12))
def test_continual_generate_is_the_joint_data_padded(n, seed, len_a, len_b):
    spec_a = {"name": "memorization", "num_facts": 9, "num_values": 3, "seq_len": 2 * len_a}
    spec_b = {"name": "induction", "vocab_size": 7, "seq_len": len_b}
    task = tasks.build("continual", task_a=spec_a, task_b=spec_b)
    a, b = task.phases
    assert task.seq_len == max(2 * len_a, len_b)
    assert task.input_vocab_size == max(a.input_vocab_size, b.input_vocab_size)
    data = task.generate(n, seed)
    phase = data.slices["phase"].tolist()
    assert phase == [0] * ((n + 1) // 2) + [1] * (n // 2)
    for (inputs, targets), p in zip(rows(data), phase):
        own = (a, b)[p].seq_len
        assert inputs[own:] == [0] * (task.seq_len - own) and targets[own:] == [IGNORE] * (task.seq_len - own)
        if p == 0:  # phase A rows follow A's map
            keys = inputs[0:own:2]
            assert targets[0:own:2] == [a.fact_values[x - 1].item() for x in keys]


# ---- parameter errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, params, words",
    [
        ("memorization", dict(seq_len=7), ["seq_len", "even"]),
        ("memorization", dict(num_facts=4, seq_len=10), ["seq_len", "num_facts"]),
        ("memorization", dict(num_values=1), ["num_values"]),
        ("cross_segment_recall", dict(seq_len=5), ["seq_len", "derived"]),
        ("cross_segment_recall", dict(num_kv_pairs=4, segment_len=6), ["num_kv_pairs", "segment_len"]),
        ("cross_segment_recall", dict(vocab_size=8, num_kv_pairs=4), ["vocab_size", "num_kv_pairs"]),
        ("cross_segment_recall", dict(distance=-1), ["distance"]),
        ("cross_segment_recall", dict(test_distances=[64, -1]), ["test_distances"]),
        ("cross_segment_recall", dict(distance=8, max_distance=4), ["max_distance", "distance"]),
        ("cross_segment_recall", dict(distractor_vocab_size=4), ["distractor_vocab_size", "separate"]),
        ("cross_segment_recall", dict(distractors="other"), ["distractors"]),
        ("forgetting_mqar", dict(seq_len=9), ["seq_len", "even"]),
        ("forgetting_mqar", dict(seq_len=12, num_kv_pairs=4), ["seq_len", "num_kv_pairs"]),
        ("forgetting_mqar", dict(vocab_size=8, num_kv_pairs=4), ["vocab_size", "num_kv_pairs"]),
        ("continual", dict(task_a={"name": "mqar", "vocab_size": 2}), ["task_a", "vocab_size"]),
        ("continual", dict(task_b={"nam": "mqar"}), ["task_b", "name"]),
        ("continual", dict(task_b={"name": "continual"}), ["task_b", "continual"]),
    ],
)
def test_bad_parameters_name_the_parameter(name, params, words):
    with pytest.raises(ConfigError) as err:
        tasks.build(name, **params)
    message = str(err.value)
    assert "\n" not in message and name in message
    for word in words:
        assert word in message


# ---- continual (the training) ---------------------------------------------------------------

CONTINUAL = [
    "model.layers=[gru]",
    "model.d_model=16",
    "train.num_train=64",
    "train.num_test=32",
    "train.epochs=2",
    "train.batch_size=32",
    "train.checkpoint=false",
    "train.lr=1e-2",
]
FACTS = ["task.name=memorization", "task.num_facts=16", "task.num_values=4", "task.seq_len=8"]


def test_continual_metrics_are_computed_from_the_phases():
    cfg_a = build_config(overrides=[*FACTS, *CONTINUAL])
    cfg_b = build_config(overrides=[*FACTS, "task.map_seed=1", *CONTINUAL])
    # A and B are barely learned in 2 epochs: a low learned_accuracy lets retention be defined
    record = train_continual(cfg_a, cfg_b, learned_accuracy=0.01)
    m = record.metrics
    assert record.status == "completed" and record.task == "continual"
    # accuracy_a_before is the accuracy on A's test set of the model A's phase trained.
    joint = tasks.build("continual", task_a=cfg_a.task.model_dump(), task_b=cfg_b.task.model_dump())
    task_a, task_b = joint.phases  # B in its own token ids
    torch.manual_seed(0)
    phase_a = fit(cfg_a, model=build_model(cfg_a, joint)).model
    test_a = task_a.split(64, 32, seed=0)[1]
    cpu = torch.device("cpu")
    assert m["accuracy_a_before"] == evaluate(phase_a, test_a, "lm", joint.output_vocab_size, cpu)["accuracy"]
    # The same run through memzoo.train (task.name=continual) gives the final model too.
    joint_cfg = build_config(
        overrides=[
            "task.name=continual",
            f"task.task_a={cfg_a.task.model_dump()}",
            f"task.task_b={cfg_b.task.model_dump()}",
            "task.learned_accuracy=0.01",
            *CONTINUAL,
        ]
    )
    result = fit(joint_cfg)
    assert result.metrics["accuracy_a_before"] == m["accuracy_a_before"]
    final = result.model
    after = evaluate(final, test_a, "lm", joint.output_vocab_size, cpu)["accuracy"]
    acc_b = evaluate(final, task_b.split(64, 32, seed=0)[1], "lm", joint.output_vocab_size, cpu)
    assert m["accuracy_a_after"] == result.metrics["accuracy_a_after"] == after
    assert m["accuracy_b"] == acc_b["accuracy"]
    assert m["forgetting"] == pytest.approx(m["accuracy_a_before"] - after)
    assert m["retention"] == pytest.approx(after / m["accuracy_a_before"])
    assert m["accuracy"] == pytest.approx((after + m["accuracy_b"]) / 2)
    assert m["accuracy_a_after_phase"] == {"1": m["accuracy_a_before"], "2": after}
    assert [p["phase"] for p in record.curve] == [0] * 2 + [1] * 2
    assert [p["epoch"] for p in record.curve] == [1, 2, 3, 4]
    assert record.config["task"] == {
        "name": "continual",
        "task_a": cfg_a.task.model_dump(),
        "task_b": cfg_b.task.model_dump(),
        "learned_accuracy": 0.01,
    }
    assert math.isfinite(m["retention"])


def test_continual_phases_and_store(tmp_path):
    store = ResultsStore(tmp_path / "r.db")
    cfg = build_config(overrides=["task.name=continual", *CONTINUAL, "train.epochs=1"])
    a, b = continual_phases(cfg)
    assert (a.task.name, b.task.name) == ("memorization", "memorization") and a.model == cfg.model
    result = fit(cfg, store=store, suite="longterm")
    stored = store.get(result.run_id)
    assert stored.status == "completed" and stored.suite == "longterm"
    assert stored.config == cfg.model_dump(mode="json")
    assert {"retention", "forgetting", "accuracy_a_before", "accuracy_b"} <= set(stored.metrics)
    assert len(stored.curve) == 2
    with pytest.raises(ConfigError, match="same model"):
        train_continual(a, b.model_copy(update={"model": a.model.model_copy(update={"d_model": 8})}))


def test_cross_segment_recall_test_distances_give_accuracy_by_distance():
    task = tasks.build(
        "cross_segment_recall",
        vocab_size=16,
        num_kv_pairs=2,
        distance=4,
        segment_len=8,
        test_distances=[4, 30],
    )
    sweep = task.evaluation_sweep()["distance"]
    assert sorted(sweep) == [4, 30] and [sweep[d].seq_len for d in (4, 30)] == [12, 38]
    assert sweep[30].test_distances == () and sweep[30].segment_len == 8
    assert tasks.build("cross_segment_recall").evaluation_sweep() == {}
    cfg = build_config(
        overrides=[
            "task.name=cross_segment_recall",
            "task.vocab_size=16",
            "task.num_kv_pairs=2",
            "task.distance=4",
            "task.segment_len=8",
            "task.test_distances=[4,30]",
            "model.layers=[gru]",
            "model.d_model=16",
            "train.num_train=32",
            "train.num_test=16",
            "train.epochs=1",
            "train.batch_size=16",
            "train.checkpoint=false",
        ]
    )
    result = fit(cfg)
    by_distance = result.metrics["accuracy_by_distance"]
    assert sorted(by_distance) == ["30", "4"]
    # The final model, read in segments of 8, on each distance's own held-out data.
    test_30 = sweep[30].split(0, 16, seed=0)[1]
    expected = evaluate(result.model, test_30, "lm", 16, torch.device("cpu"), segment_len=8)
    assert by_distance["30"] == expected["accuracy"]
    assert by_distance["4"] == result.metrics["accuracy"]  # one epoch: final model == best


def test_longterm_suite_runs_every_layer_on_every_probe():
    from memzoo.sweep.suites import suite_configs

    configs = suite_configs("longterm")
    by_task: dict[str, set[str]] = {}
    for cfg in configs:
        assert cfg.model.layers[0] == "sliding_window"
        assert cfg.model.layer_options["sliding_window"] == {"window": 32}
        by_task.setdefault(cfg.task.name, set()).add(cfg.model.layers[1])
    layers = {"sliding_window", "persistent", "memory_tokens", "knn", "neural_memory"}
    assert by_task == {
        "cross_segment_recall": layers | {"attention"},  # + the O(T) upper bound
        "memorization": layers,
        "continual": layers,
    }
    recall_configs = [c for c in configs if c.task.name == "cross_segment_recall"]
    recall = recall_configs[0].task.build()
    assert recall.test_distances == (64, 256, 512, 1024, 2048) and recall.segment_len == 64
    assert recall.distractors == "separate" and recall.max_distance > recall.distance
    assert not recall.answers_shown  # no recall by elimination
    # training covers distances inside the window (the layers' attention learns to bind there)
    # and several segment writes
    assert recall.distance < 32 and recall.max_distance >= 4 * recall.segment_len
    # Each long-term layer also runs with its memory off, and every recall row has 2 seeds.
    ablations = [c for c in recall_configs if c.model.reset_long_term_memory]
    assert {c.model.layers[1] for c in ablations} == {"memory_tokens", "knn", "neural_memory"}
    no_slots = [
        c for c in recall_configs if c.model.layer_options.get("persistent", {}).get("num_slots") == 0
    ]
    assert no_slots and all(c.train.max_steps and c.train.max_seconds is None for c in recall_configs)
    assert len(recall_configs) == 2 * len(
        {(c.task.model_dump_json(), c.model.model_dump_json()) for c in recall_configs}
    )
    knn = next(c for c in recall_configs if c.model.layers[1] == "knn")
    assert knn.model.layer_options["knn"]["capacity"] < max(recall.test_distances)
