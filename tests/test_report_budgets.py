"""The report's "Long-term memory at equal budgets": recall at the longest test distance against
the bytes carried across a segment boundary, per distractor variant, drawn only when a memory
was run at two budgets."""

from __future__ import annotations

import html as html_lib
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


def _overwrite(layer: str, seed: int, accuracy: float, stale: float | None, lr: float = 3e-3) -> RunRecord:
    config = {
        "task": {"name": "cross_segment_recall", "distractors": "separate", "rebind": 2},
        "model": {"layers": ["sliding_window", layer]},
        "train": {"lr": lr, "seed": seed},
    }
    metrics = {
        "accuracy": accuracy,
        "validation": {"accuracy": accuracy - (lr == 1e-2)},
        "state_bytes_at_boundary": 2048 if layer == "memory_tokens" else 540_000,
        "accuracy_by_distance": {"64": 1.0, "512": accuracy / 2},
    }
    if stale is not None:
        metrics |= {"stale_answer_rate": stale, "rebound_accuracy": 1 - stale, "kept_accuracy": 0.75}
    return RunRecord(
        run_id=f"ow-{layer}-{seed}-{lr}",
        config=config,
        config_hash=config_hash(config),
        status="completed",
        task="cross_segment_recall",
        layers=["sliding_window", layer],
        metrics=metrics,
    )


def test_the_overwrite_probe_shows_accuracy_stale_rate_and_bytes_per_memory():
    runs = [_overwrite("knn", s, 0.9 + 0.02 * s, 0.05) for s in (0, 1)]
    runs += [_overwrite("memory_tokens", s, 0.5, 0.6 + 0.1 * s) for s in (0, 1)]
    runs += [_overwrite("memory_tokens", s, 0.99, 0.0, lr=1e-2) for s in (0, 1)]  # loses on validation
    runs.append(_overwrite("neural_memory", 0, 0.7, None))  # stored before the metric existed
    html = equal_budgets(ReportData(runs=runs))  # no frontier panel (rebind runs): the probe alone
    assert html.startswith("<h3>Overwrite probe</h3>")
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)[1:]
    assert [re.search(r"<td>(.*?)</td>", r).group(1) for r in rows][0].startswith("sliding_window+knn")
    assert "0.650 ± 0.071 (n=2)" in html and "2,048" in html and "540,000" in html  # stale rate, bytes
    assert "0.350 ± 0.071 (n=2)" in html and "accuracy at distance 512" in html  # new values, far
    assert "–" in next(r for r in rows if "neural_memory" in r)  # no stale rate stored
    assert equal_budgets(ReportData(runs=[])) is None


def test_the_best_per_byte_points_are_named_per_variant():
    runs = [
        _run(layer, size, variant, seed)
        for layer in ("knn", "memory_tokens")
        for size in (128, 512)
        for variant in ("separate", "shared")
        for seed in (0, 1)
    ]
    runs += [_run("neural_memory", 64, "separate", seed) for seed in (0, 1)]  # fewer bytes, less recall
    html = equal_budgets(ReportData(runs=runs))
    line = html_lib.unescape(re.search(r"Best per byte.*?</p>", html, re.S).group(0))
    separate, shared = line.split(": ", 1)[1].split(" | ")
    # knn and memory_tokens recall alike at equal bytes: one of each tie is on the front
    assert separate.startswith("separate: sliding_window+neural_memory (62.5 KiB, 0.068); ")
    assert (
        separate.count("KiB") == 3 and "(125.0 KiB, 0.130)" in separate and "(500.0 KiB, 0.505)" in separate
    )
    assert shared.startswith("shared: ") and shared.count("KiB") == 2  # no neural_memory point there


def test_a_growing_cache_is_placed_at_the_bytes_it_carries_at_the_far_distance():
    """Attention's cache grows with the tokens read: at distance 512 it carries far more than
    at the first boundary, and the frontier must place it there (not at the test set's bytes)."""
    runs = [_run("knn", size, "separate", seed) for size in (128, 512) for seed in (0, 1)]
    for seed in (0, 1):
        run = _run("attention", 64, "separate", seed)
        run.metrics["state_bytes_at_boundary_by_distance"] = {"64": 50_000, "512": 300_000}
        runs.append(run)
    html = equal_budgets(ReportData(runs=runs))
    assert re.search(r"sliding_window\+attention</td><td[^>]*>300,000<", html)
    assert "64,000" not in html  # its test-set bytes (1000 * size) are not its budget


def test_ablations_are_left_out_and_longer_training_is_its_own_panel():
    runs = [_run("knn", size, "separate", seed) for size in (128, 512) for seed in (0, 1)]
    for seed in (0, 1):
        ablation = _run("knn", 512, "separate", seed)
        ablation.config["model"]["reset_long_term_memory"] = True
        ablation.config_hash = config_hash(ablation.config)
        ablation.run_id += "-reset"
        ablation.metrics["state_bytes_at_boundary"] = 7_777
        runs.append(ablation)
        for size in (4, 8):  # trained on to distance 512: not beside memories trained to 256
            longer = _run("rmt", size, "separate", seed)
            longer.config["task"]["max_distance"] = 512
            longer.config_hash = config_hash(longer.config)
            longer.run_id += "-512"
            runs.append(longer)
    for run in runs:  # the memories and their ablation trained to 256: one panel if not left out
        if "max_distance" not in run.config["task"]:
            run.config["task"]["max_distance"] = 256
            run.config_hash = config_hash(run.config)
    html = html_lib.unescape(equal_budgets(ReportData(runs=runs)))
    assert "7,777" not in html  # the ablation's bytes: no point, no row
    assert "separate, trained to distance 512" in html
    assert CSV_ROWS.search(html).group(1) == "4"  # knn at 2 budgets, RMT at 2 budgets: 2 panels


def test_a_setting_run_by_two_suites_is_one_point_the_swept_one():
    runs = [
        _run("knn", size, "separate", seed, lr)
        for size in (128, 512)
        for seed in (0, 1)
        for lr in (3e-3, 1e-2)
    ]
    for seed in (0, 1):  # the same model and budget at one rate, tested at more distances
        other = _run("knn", 512, "separate", seed)
        other.config["task"]["test_distances"] = [64, 512, 2048]
        other.config_hash = config_hash(other.config)
        other.run_id += "-longterm"
        other.metrics["accuracy_by_distance"]["512"] = 0.123
        other.metrics["validation"]["accuracy"] = 0.99  # better on validation, but not swept
        runs.append(other)
    html = equal_budgets(ReportData(runs=runs))
    assert CSV_ROWS.search(html).group(1) == "2" and "0.123" not in html


def test_the_table_names_each_seed_and_the_rate_picked_on_validation():
    runs = [
        _run(layer, size, "separate", seed, lr)
        for layer in ("knn", "memory_tokens")
        for size in (128, 512)
        for seed in (1, 0)  # stored out of seed order
        for lr in (3e-3, 1e-2)
    ]
    html = equal_budgets(ReportData(runs=runs))
    assert "lr picked (tried)" in html
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", html, re.S) if "knn" in r and "512,000" in r)
    assert "0.500 / 0.510" in row  # seed 0 then seed 1 (recall 0.5 + 0.01 * seed)
    assert "0.003 (0.003, 0.01)" in row  # 1e-2 loses on validation
    assert "%5B" not in re.search(r"data:text/csv[^\"]*", html).group(0)  # no lists in the CSV ("[")
