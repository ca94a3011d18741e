"""The recall-vs-state section's frontier table: the smallest state at which each layer
first reaches 0.99, from the mean over seeds at each state size (never the luckiest seed)."""

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
    # At 4,000 bytes the two seeds average 0.5975: that size does not reach 0.99; 16,000 does.
    assert "<td>mqar</td><td>deltanet</td><td>16,000</td><td>0.999</td><td>16,000</td>" in page
    assert "<td>mqar</td><td>gru</td><td>not reached</td><td>0.310</td><td>8,000</td>" in page


def _swept(i: int, lr: float, seed: int, validation: float, test: float) -> RunRecord:
    config = {"task": {"name": "mqar"}, "model": {"layers": ["gru"]}, "train": {"lr": lr, "seed": seed}}
    return RunRecord(
        run_id=f"s{i}",
        config=config,
        config_hash=f"s{i}",
        status="completed",
        task="mqar",
        layers=["gru"],
        state_bytes=1_000,
        metrics={"accuracy": test, "validation": {"accuracy": validation}},
    )


def test_the_learning_rate_is_picked_on_validation_and_seeds_are_averaged():
    runs = [
        _swept(0, 1e-3, 0, 0.50, 0.95),  # best test accuracy, but worse on validation
        _swept(1, 1e-3, 1, 0.52, 0.90),
        _swept(2, 1e-2, 0, 0.80, 0.70),
        _swept(3, 1e-2, 1, 0.84, 0.74),
    ]
    page = build_report_html(ReportData(runs=runs, speed=[], source="memory"))
    assert "0.720 ± 0.028 (n=2, lr 0.01)" in page  # lr 1e-2's two test accuracies
    assert "0.95" not in page.split('id="accuracy-by-task"')[1].split("</table>")[0]


def test_the_summary_is_generated_from_the_stored_cells():
    runs = [
        _swept(0, 1e-3, 0, 0.97, 0.96),
        _swept(1, 1e-3, 1, 0.99, 0.98),
        RunRecord(
            run_id="cut",
            config={},
            config_hash="c",
            status="truncated",
            task="mqar",
            layers=["lstm"],
            metrics={"accuracy": 0.99},
        ),
    ]
    page = build_report_html(ReportData(runs=runs, speed=[], source="memory"))
    summary = page.split('id="summary"')[1].split("</section>")[0]
    assert "solved (mean test accuracy ≥ 0.95) by gru (0.970, 1,000 B of state)" in summary
    assert "Left out of every table: 1 truncated run(s)" in summary and "lstm" not in summary
