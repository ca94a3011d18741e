"""The recall-vs-state section's frontier table: the smallest state at which each layer
first reaches 0.99, from the best run at each state size."""

from __future__ import annotations

from memzoo.report.data import ReportData
from memzoo.report.html import build_report_html
from memzoo.results.record import RunRecord


def _run(i: int, layer: str, state_bytes: int, acc: float) -> RunRecord:
    return RunRecord(
        run_id=f"r{i}",
        config={},
        config_hash=f"h{i}",
        status="completed",
        task="mqar",
        layers=[layer, layer],
        state_bytes=state_bytes,
        metrics={"accuracy": acc},
    )


def test_frontier_table_gives_the_smallest_state_reaching_the_target():
    runs = [
        _run(0, "deltanet", 1_000, 0.40),
        _run(1, "deltanet", 4_000, 0.995),
        _run(2, "deltanet", 16_000, 0.999),
        _run(3, "deltanet", 4_000, 0.20),  # a worse seed
        _run(4, "gru", 2_000, 0.05),
        _run(5, "gru", 8_000, 0.31),
    ]
    page = build_report_html(ReportData(runs=runs, speed=[], source="memory"))
    assert '<section id="recall-vs-state">' in page
    assert "<td>mqar</td><td>deltanet</td><td>4,000</td><td>0.999</td><td>16,000</td>" in page
    assert "<td>mqar</td><td>gru</td><td>not reached</td><td>0.310</td><td>8,000</td>" in page
