"""An ablation (same layers, memory switched off) is its own row in every table and plot,
never averaged with, or dropped in favour of, the model it ablates."""

from __future__ import annotations

from memzoo.report.cells import result_cells
from memzoo.report.data import ReportData
from memzoo.report.extra import extra_metrics
from memzoo.report.summary import summary
from memzoo.results.record import RunRecord

LAYERS = ["sliding_window", "knn"]


def run(run_id: str, seed: int, accuracy: float, validation: float, **model) -> RunRecord:
    config = {
        "task": {"name": "cross_segment_recall", "distance": 16},
        "model": {"layers": LAYERS, "d_model": 64, "layer_options": {"knn": {"capacity": 1024}}, **model},
        "train": {"lr": 3e-3, "seed": seed},
    }
    return RunRecord(
        run_id=run_id,
        config=config,
        config_hash=run_id,
        status="completed",
        task="cross_segment_recall",
        layers=LAYERS,
        state_bytes=1000,
        metrics={
            "accuracy": accuracy,
            "validation": {"accuracy": validation},
            "accuracy_by_distance": {"64": accuracy, "256": accuracy},
        },
    )


def runs() -> list[RunRecord]:
    return [
        run("on0", 0, 1.0, 1.0),
        run("on1", 1, 0.98, 0.99),
        run("off0", 0, 0.06, 0.07, reset_long_term_memory=True),
        run(
            "nope",
            0,
            0.5,
            0.5,
            reset_long_term_memory=False,
            layer_options={"knn": {"capacity": 1024, "rope": False}},
        ),
        run("off1", 1, 0.07, 0.06, reset_long_term_memory=True),
    ]


def test_the_ablation_is_its_own_cell_with_its_own_label():
    data = ReportData(runs=runs())
    cells = {c.label: c for c in result_cells(data.runs, data.run_labels)}
    assert set(cells) == {
        "sliding_window+knn",
        "sliding_window+knn (memory reset every segment)",
        "sliding_window+knn (knn.rope=False)",  # a False option is a variant too
    }
    assert cells["sliding_window+knn"].test == [1.0, 0.98]
    assert cells["sliding_window+knn (memory reset every segment)"].test == [0.06, 0.07]


def test_summary_names_both_and_the_distance_plot_keeps_them_apart():
    data = ReportData(runs=runs())
    text = summary(data)
    assert "sliding_window+knn (0.990" in text
    assert "sliding_window+knn (memory reset every segment) (0.065" in text
    extra = extra_metrics(data)  # the accuracy_by_distance table: a row per variant
    assert "memory reset every segment" in extra
    assert "0.99 (n=2)" in extra and "0.065 (n=2)" in extra


def test_option_variants_are_named_by_the_option_that_differs():
    slots = [
        run("a", 0, 0.9, 0.9, layer_options={"knn": {"capacity": 1024}, "persistent": {"num_slots": 16}}),
        run("b", 0, 0.1, 0.1, layer_options={"knn": {"capacity": 1024}, "persistent": {"num_slots": 0}}),
        run(
            "c",
            0,
            0.5,
            0.5,
            d_model=128,
            layer_options={"knn": {"capacity": 1024}, "persistent": {"num_slots": 16}},
        ),
    ]
    labels = ReportData(runs=slots).run_labels
    assert labels == {
        "a": "sliding_window+knn (persistent.num_slots=16)",
        "b": "sliding_window+knn (persistent.num_slots=0)",
        "c": "sliding_window+knn (persistent.num_slots=16)",  # width is not a variant
    }


def test_an_option_left_at_its_default_reads_as_the_default():
    """One suite sets knn.capacity=4096 (knn's default), another leaves it unset: one setting,
    one label; a capacity that differs is still named."""
    options = [{"knn": {"capacity": 4096}}, {}, {"knn": {}}, {"knn": {"capacity": 512}}]
    runs_ = [run(f"r{i}", 0, 0.5, 0.5, layer_options=o) for i, o in enumerate(options)]
    labels = ReportData(runs=runs_).run_labels
    assert {labels[f"r{i}"] for i in range(3)} == {"sliding_window+knn (knn.capacity=4096)"}
    assert labels["r3"] == "sliding_window+knn (knn.capacity=512)"


def test_continual_remedies_are_rows_of_their_own():
    """Runs of one layer combination that differ only in the continual remedy are labelled by
    it, so the retention table never averages no remedy, replay and EWC together."""
    from memzoo.report.variants import run_labels

    runs = []
    for remedy in ("none", "replay", "ewc"):
        config = {"task": {"name": "continual", "remedy": remedy}, "model": {"layers": ["gru"]}, "train": {}}
        runs.append(
            RunRecord(
                run_id=remedy,
                config=config,
                config_hash=remedy,
                status="completed",
                task="continual",
                layers=["gru"],
                metrics={"accuracy": 1.0},
            )
        )
    assert run_labels(runs) == {"none": "gru (no remedy)", "replay": "gru (replay)", "ewc": "gru (EWC)"}
