"""The ``longterm_frontier`` suite: memories at three sizes whose budgets (bytes across a
segment boundary) differ, both distractor variants, the overwrite probe (rebound keys); and a tiny run of
each kind stores what the report's frontier reads."""

from __future__ import annotations

import copy

from memzoo.models import SequenceModel
from memzoo.sweep.suites import suite_configs
from memzoo.sweep.suites.longterm import SEGMENT
from memzoo.sweep.suites.longterm_frontier import SIXTEEN_WINDOWS, SIZES, VARIANTS, frontier_models
from memzoo.train import fit


def boundary_bytes(model: dict) -> int:
    return SequenceModel(vocab_size=64, **model).boundary_state_size(SEGMENT)


def test_each_memory_spans_three_budgets_and_persistent_stays_flat():
    by_layer: dict[str, list[int]] = {}
    for model in frontier_models()[1:]:
        by_layer.setdefault(model["layers"][-1], []).append(boundary_bytes(model))
    for layer in ("memory_tokens", "knn", "neural_memory"):
        assert by_layer[layer] == sorted(set(by_layer[layer])), layer  # three distinct budgets
    assert len(set(by_layer["persistent"])) == 1  # its slots are parameters, not carried state
    assert set(by_layer) == set(SIZES)


def test_the_suite_sweeps_variants_rates_and_seeds():
    configs = suite_configs("longterm_frontier")
    recall = [c for c in configs if c.task.name == "cross_segment_recall"]
    assert {c.task.params()["distractors"] for c in recall} == set(VARIANTS)
    assert all(SIXTEEN_WINDOWS in c.task.params()["test_distances"] for c in recall)
    cells = {(c.model_dump_json(exclude={"train": {"lr", "seed"}})) for c in configs}
    assert len(configs) == 6 * len(cells)  # 3 learning rates x 2 seeds per cell
    # rates outermost, the longterm suite's 3e-3 first: a stopped bench has whole frontiers
    rates = [c.train.lr for c in configs]
    assert rates == sorted(rates, key=lambda lr: (lr != 3e-3, lr))
    assert len({c.model_dump_json(exclude={"train": {"seed"}}) for c in configs[: 2 * len(cells)]}) == len(
        cells
    )


def test_a_tiny_run_of_each_kind_stores_budget_and_recall():
    configs = suite_configs("longterm_frontier")
    recall = next(
        c for c in configs if c.task.name == "cross_segment_recall" and "memory_tokens" in c.model.layers
    )
    overwrite = next(c for c in configs if c.task.params().get("rebind"))
    for config in (recall, overwrite):
        data = copy.deepcopy(config.model_dump(mode="json"))
        data["train"] |= {
            "max_steps": 2,
            "num_train": 32,
            "num_validation": 16,
            "num_test": 16,
            "curriculum": None,
        }
        result = fit(data, progress=False)
        assert result.status == "completed"
        assert result.metrics["state_bytes_at_boundary"] == result.model.boundary_state_size(SEGMENT)
        assert str(SIXTEEN_WINDOWS) in result.metrics["accuracy_by_distance"]
        if config is overwrite:  # two of four keys rebound: half the test queries
            assert result.metrics["stale_answer_queries"] == 16 * 2
