"""The report's figures: well-formed inline SVG, each with its plotted numbers as a CSV link,
spread over seeds drawn where there are seeds, no axis over a single value, legends off the
data, unique ids on the page, no external reference."""

from __future__ import annotations

import csv
import io
import re
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter

import pytest

from memzoo.report.data import ReportData
from memzoo.report.html import build_report_html, write_report
from memzoo.report.plots import figure_html, legend, line_with_band, subplots
from memzoo.report.sections import recall_vs_state
from memzoo.results.record import RunRecord, config_hash
from memzoo.results.store import ResultsStore

FIGURE = re.compile(
    r'<figure class="plot" id="fig-([^"]+)">(<svg .*?</svg>)\n<figcaption>(.*?)</figcaption></figure>', re.S
)
CSV_LINK = re.compile(r'<a class="csv" download="([^"]+)" href="data:text/csv;charset=utf-8,([^"]*)">')
SEEDS = (0, 1)


def _run(task: str, layer: str, seq_len: int, seed: int) -> RunRecord:
    acc = {"attention": 0.9, "gru": 0.4}[layer] - (seq_len == 256) * 0.2 + 0.02 * seed
    config = {
        "task": {"name": task, "seq_len": seq_len, "num_kv_pairs": 8},
        "model": {"layers": [layer, layer], "d_model": 32},
        "train": {"lr": 3e-3, "seed": seed},
    }
    return RunRecord(
        run_id=f"{task}-{layer}-{seq_len}-{seed}",
        config=config,
        config_hash=config_hash(config),
        status="completed",
        task=task,
        layers=[layer, layer],
        state_bytes=seq_len * 256 if layer == "attention" else 2048,
        metrics={
            "accuracy": acc,
            "validation": {"accuracy": acc},
            "accuracy_by_distance": {"8": acc, "32": acc / 2},
        },
        curve=[{"epoch": e, "steps": 10 * e, "accuracy": acc * e / 3} for e in (1, 2, 3)],
    )


def _store(path) -> ResultsStore:
    """mqar at two lengths, copy at one, two layers, two seeds each; one pair count; two
    forecast runs; speed rows."""
    store = ResultsStore(path)
    for task, lengths in (("mqar", (64, 256)), ("copy", (128,))):
        for layer in ("attention", "gru"):
            for seq_len in lengths:
                for seed in SEEDS:
                    store.write_record(_run(task, layer, seq_len, seed))
    for seed, mae in zip(SEEDS, (0.3, 0.35)):
        config = {"task": {"name": "forecast", "series": "co2"}, "train": {"seed": seed}}
        metrics = {"mae": mae, "naive_mae": 0.75, "seasonal_naive_mae": 0.5}
        store.write_record(
            RunRecord(
                run_id=f"forecast-{seed}",
                config=config,
                config_hash=config_hash(config),
                status="completed",
                task="forecast",
                layers=["gru"],
                metrics=metrics,
            )
        )
    store.add_speed_rows(
        {"layer": layer, "seq_len": t, "mode": mode, "tokens_per_s": 1e6 / t, "machine": "cpu"}
        for layer in ("gru", "attention")
        for mode, lengths in (("infer", (128, 1024)), ("train", (512,)))
        for t in lengths
    )
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ResultsStore:
    return _store(tmp_path_factory.mktemp("figures") / "memzoo.db")


@pytest.fixture(scope="module")
def page(store, tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("out") / "report.html"
    return write_report(store, out).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def figures(page) -> dict[str, tuple[ET.Element, str, list[dict]]]:
    """``{name: (parsed svg, figcaption, csv rows)}`` of every figure on the page."""
    out = {}
    for name, svg, figcaption in FIGURE.findall(page):
        link = CSV_LINK.search(figcaption)
        assert link and link.group(1) == f"{name}.csv", figcaption
        rows = list(csv.DictReader(io.StringIO(urllib.parse.unquote(link.group(2)))))
        out[name] = (ET.fromstring(svg), figcaption, rows)
    return out


# Each figure's plotted points: accuracy by task 3 settings x 2 layers; against length only
# mqar (2 layers x 2 lengths); state 3 panels x 2 layers; curves 3 x 2 x 3 steps; distance
# 3 settings x 2 layers x 2 keys; speed only "infer" (2 layers x 2 lengths); applications:
# gru and 2 baselines.
EXPECTED_ROWS = {
    "accuracy-by-task": 6,
    "accuracy-vs-seq_len": 4,
    "recall-vs-state": 6,
    "learning-curves": 18,
    "extra-accuracy_by_distance": 12,
    "speed": 4,
    "applications": 3,
}


def test_every_figure_is_svg_with_its_data_as_csv(page, figures):
    assert page.count('<figure class="plot"') == len(figures) == len(EXPECTED_ROWS)
    assert {name: len(rows) for name, (_, _, rows) in figures.items()} == EXPECTED_ROWS
    for name, (svg, figcaption, rows) in figures.items():
        assert all(row.get("layers") or row.get("layer") or row.get("series") for row in rows), name
        assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("viewBox"), name
        assert svg.get("role") == "img" and svg.get("aria-label"), name
        assert figcaption.strip(), name
    assert "<img" not in page and "<script" not in page and "<?xml" not in page and "DOCTYPE svg" not in page
    assert not re.search(r'(src|href)="(https?:|//)', page)  # one self-contained file


def test_no_axis_over_a_single_value(page, figures):
    assert "fig-accuracy-vs-num_kv_pairs" not in page  # every run has 8 pairs
    assert "mqar: num_kv_pairs = 8 pairs" in page and "copy: seq_len = 128 tokens" in page
    assert {row["task"] for row in figures["accuracy-vs-seq_len"][2]} == {"mqar"}  # copy: one length
    assert {row["mode"] for row in figures["speed"][2]} == {"infer"}  # train: one length
    assert "train: 512 tokens" in page
    one_state = [_run("mqar", "gru", 64, seed) for seed in SEEDS]
    assert "<figure" not in recall_vs_state(ReportData(runs=one_state))


def test_spread_over_seeds_is_drawn_and_said(figures):
    for name in ("accuracy-by-task", "accuracy-vs-seq_len", "recall-vs-state", "learning-curves"):
        svg, figcaption, rows = figures[name]
        ids = [el.get("id", "") for el in svg.iter()]
        assert any("LineCollection" in i or "FillBetweenPolyCollection" in i for i in ids), name
        assert "standard deviation over seeds" in figcaption, name
        with_seeds = [r for r in rows if r["n_seeds"] == "2" and r["std_over_seeds"]]
        assert with_seeds and all(float(r["std_over_seeds"]) >= 0 for r in with_seeds), name
    seeds = {r["n_seeds"] for r in figures["accuracy-vs-seq_len"][2]}
    assert seeds == {"2"}
    one_seed = recall_vs_state(
        ReportData(runs=[_run("mqar", layer, 64, 0) for layer in ("gru", "attention")])
    )
    assert "<figure" in one_seed and "LineCollection" not in one_seed  # one seed: no error bar
    svg, figcaption, rows = figures["applications"]
    assert any("LineCollection" in el.get("id", "") for el in svg.iter())  # gru: two runs
    assert "standard deviation over runs" in figcaption
    gru = next(r for r in rows if r["series"] == "gru")
    assert (gru["kind"], gru["n_runs"], float(gru["mean"])) == ("model", "2", pytest.approx(0.325))


def test_axis_labels_carry_units(figures):
    texts = {
        name: " ".join(t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}text"))
        for name, (svg, _, _) in figures.items()
    }
    assert "sequence length (tokens)" in texts["accuracy-vs-seq_len"]
    assert "test accuracy (fraction)" in texts["accuracy-vs-seq_len"]
    assert "memory state (KiB per sequence)" in texts["recall-vs-state"]
    assert "optimiser steps" in texts["learning-curves"]
    assert "throughput (tokens/s)" in texts["speed"]
    assert "distance (tokens)" in texts["extra-accuracy_by_distance"]
    assert (
        "MAE (standardised) (series std)" in texts["applications"]
        and "lower is better" in texts["applications"]
    )


def test_ids_are_unique_on_the_page(page):
    ids = Counter(re.findall(r'\bid="([^"]+)"', page))
    assert ids and not [i for i, n in ids.items() if n > 1]
    for ref in re.findall(r'(?:url\(#|href="#)([^")]+)', page):
        assert ref in ids, ref  # every reference inside an SVG finds its own element


def _overlaps_an_axes(fig, box) -> bool:
    renderer = fig.canvas.get_renderer()
    return any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)


@pytest.mark.parametrize(
    ("panels", "labels"),
    [
        (1, ["gru", "attention"]),
        (3, ["gru", "lstm"]),
        (2, [f"sliding_window+knn (variant {i} " + "x" * 30 + ")" for i in range(3)]),
        # a frontier's legend: many long labels, more than the panels' width holds in a row
        (2, [f"sliding_window+memory tokens (per layer) (memory_tokens.num_memory={i})" for i in range(13)]),
    ],
)
def test_the_legend_sits_outside_every_axes(panels, labels):
    fig, axes = subplots(panels)
    for ax in axes:
        for i, label in enumerate(labels):
            line_with_band(ax, [64, 128, 256], [0.2 + i / 10, 0.5, 0.9], [0.05, 0.1, 0.0], label, f"C{i}")
    assert not axes[0].spines["top"].get_visible() and not axes[0].spines["right"].get_visible()
    drawn = legend(fig)
    fig.canvas.draw()
    box = drawn.get_window_extent(fig.canvas.get_renderer())
    assert not _overlaps_an_axes(fig, box)
    assert len(drawn.get_texts()) == len(labels)  # each label once, however many panels
    assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height
    for ax in axes:  # the panels keep their size: the legend widened or heightened the figure
        assert ax.get_window_extent().height >= 0.5 * 2.8 * fig.dpi


def test_no_legend_in_the_report_covers_an_axes(store, monkeypatch):
    from matplotlib.figure import Figure

    save, checked = Figure.savefig, []

    def check_then_save(fig, *args, **kwargs):
        fig.canvas.draw()
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
        for drawn in legends:
            assert not _overlaps_an_axes(fig, drawn.get_window_extent(fig.canvas.get_renderer()))
        checked.append(len(legends))
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", check_then_save)
    build_report_html(ReportData.from_store(store))
    assert len(checked) == len(EXPECTED_ROWS) and sum(checked) >= 5  # bars and apps: labels on the axis


def test_an_axes_legend_sits_right_of_its_axes():
    fig, axes = subplots(2)
    line_with_band(axes[0], [1, 2], [0.1, 0.2], [None, None], "gru", "C0")
    drawn = legend(axes[0])
    fig.canvas.draw()
    assert not _overlaps_an_axes(fig, drawn.get_window_extent(fig.canvas.get_renderer()))


def test_figure_html_is_deterministic_and_escapes():
    fig, (ax,) = subplots(1)
    line_with_band(ax, [1, 2], [0.1, 0.2], [0.01, 0.02], "<b>gru</b>", "C0")
    rows = [{"layers": "<b>gru</b>", "x": 1, "mean": 0.1}, {"layers": "a,b", "x": 2, "mean": 0.2}]
    html = figure_html(fig, 'alt "<x>"', name="Demo Figure", rows=rows)
    assert html == figure_html(fig, 'alt "<x>"', name="Demo Figure", rows=rows)
    assert 'aria-label="alt &quot;&lt;x&gt;&quot;"' in html and "<b>" not in html
    assert 'download="demo-figure.csv"' in html and 'id="fig-demo-figure"' in html
    data = urllib.parse.unquote(CSV_LINK.search(html).group(2))
    assert list(csv.reader(io.StringIO(data))) == [
        ["layers", "x", "mean"],
        ["<b>gru</b>", "1", "0.1"],
        ["a,b", "2", "0.2"],
    ]


def test_a_report_without_runs_has_no_figures():
    assert "<figure" not in build_report_html(ReportData(runs=[]))
