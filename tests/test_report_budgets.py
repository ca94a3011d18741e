"""The report's "Long-term memory at equal budgets": recall at the longest test distance against
the bytes carried across a segment boundary, per distractor variant, drawn only when a memory
was run at two budgets."""

from __future__ import annotations

import re

from memzoo.report.budgets import equal_budgets
from memzoo.report.data import ReportData
from memzoo.results.record import RunRecord, config_hash

CSV_ROWS = re.compile(r"data \(CSV, (\d+) rows\)")


def _run(layer: str, size: int, variant: str, seed: int, lr: float = 3e-3) -> RunRecord:
    recall = min(1.0, size / 1024) - 0.2 * (variant == "shared") + 0.01 * seed
    config = {
        "task": {"name": "cross_segment_recall", "distractors": variant},
        "model": {"layers": ["sliding_window", layer], "layer_options": {layer: {"size": size}}},
        "train": {"lr": lr, "seed": seed},
    }
    return RunRecord(
        run_id=f"{layer}-{size}-{variant}-{seed}-{lr}",
        config=config,
        config_hash=config_hash(config),
        status="completed",
        task="cross_segment_recall",
        layers=["sliding_window", layer],
        metrics={
            "accuracy": recall,
            "validation": {"accuracy": recall - (lr == 1e-2)},  # the higher rate loses on validation
            "accuracy_by_distance": {"64": 1.0, "512": recall},
            "state_bytes_at_boundary": 1000 * size,
        },
    )


def test_each_variant_is_a_panel_of_memories_through_their_budgets():
    runs = [
        _run(layer, size, variant, seed, lr)
        for layer in ("knn", "memory_tokens")
        for size in (128, 512)
        for variant in ("separate", "shared")
        for seed in (0, 1)
        for lr in (3e-3, 1e-2)
    ]
    html = equal_budgets(ReportData(runs=runs))
    assert html is not None and 'id="fig-equal-budgets"' in html
    assert CSV_ROWS.search(html).group(1) == "8"  # 2 variants x 2 memories x 2 budgets
    assert "recall at distance 512" in html
    assert "0.130 ± 0.007 (n=2)" in html  # size 128, separate: mean of seeds 0.125, 0.135 at the rate picked


def test_no_panel_when_every_memory_has_one_budget():
    runs = [_run(layer, 512, "separate", seed) for layer in ("knn", "memory_tokens") for seed in (0, 1)]
    assert equal_budgets(ReportData(runs=runs)) is None
