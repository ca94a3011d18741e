"""The report's "Continual learning" section: one row per memory x remedy x learning rate with
A before, retention, plasticity and their mean over seeds; a row whose retention is undefined
says why; escaped; left out without continual runs."""

from __future__ import annotations

import re

from memzoo.report.continual import continual_learning
from memzoo.report.data import ReportData
from memzoo.report.html import build_report_html
from memzoo.results.record import RunRecord, config_hash


def _run(
    layer: str, remedy: str, seed: int, before: float, after: float, b: float, status: str = "completed"
):
    config = {
        "task": {"name": "continual", "remedy": remedy},
        "model": {"layers": ["sliding_window", layer]},
        "train": {"lr": 3e-3, "seed": seed},
    }
    metrics = {
        "accuracy_a_before": before,
        "retention": after,
        "plasticity": b,
        "continual_score": (after + b) / 2,
    }
    return RunRecord(
        run_id=f"{layer}-{remedy}-{seed}",
        config=config,
        config_hash=config_hash(config),
        status=status,
        task="continual",
        layers=["sliding_window", layer],
        metrics=metrics,
    )


def _rows(html: str) -> list[list[str]]:
    return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)[1:]]


def test_rows_per_memory_and_remedy_with_seed_means():
    runs = [
        _run("knn", remedy, seed, 1.0, r + 0.02 * seed, 1.0)
        for remedy, r in (("ewc", 0.8), ("none", 0.0))
        for seed in (0, 1)
    ]
    runs.append(_run("knn", "replay", 0, 1.0, 0.95, 1.0, status="failed"))  # not a result
    rows = _rows(continual_learning(ReportData(runs=runs)))
    assert [r[:3] for r in rows] == [
        ["sliding_window+knn", "no remedy", "0.003"],
        ["sliding_window+knn", "EWC", "0.003"],
    ]
    assert rows[1][4] == "0.810 ± 0.014 (n=2)" and rows[1][6] == "0.905 ± 0.007 (n=2)"
    assert rows[0][7] == "–"  # retention on A's own outputs not stored


def test_a_row_whose_retention_is_undefined_says_why():
    run = _run("persistent", "none", 0, 0.4, 0.1, 1.0)
    run.metrics |= {"retention": None, "continual_score": None, "continual_undefined": "A was not learned"}
    rows = _rows(continual_learning(ReportData(runs=[run])))
    assert rows[0][1] == "no remedy (undefined: A was not learned)" and rows[0][4] == "–"


def test_left_out_without_continual_runs_and_present_in_the_page():
    assert continual_learning(ReportData(runs=[])) is None
    page = build_report_html(ReportData(runs=[_run("<b>", "none", 0, 1.0, 0.0, 1.0)]))
    assert 'id="continual"' in page and "&lt;b&gt;" in page and "<b>" not in page.split('id="continual"')[1]
