"""The HTML report: every section from a small fabricated store, escaping, omissions."""

from __future__ import annotations

import re
import sys
import xml.etree.ElementTree as ET

import pytest

from memzoo.errors import MemzooError
from memzoo.report.data import ReportData, layer_label
from memzoo.report.html import SECTIONS, Section, build_report_html, write_report
from memzoo.report.sections import accuracy_by_task, runs_table
from memzoo.results.record import RunRecord, config_hash
from memzoo.results.store import ResultsStore

EVIL = "<script>alert('pwned')</script>"
# The sections the fabricated store fills (a section needing other data, e.g. inspections,
# is tested where that data is made).
FABRICATED_SECTIONS = (
    "summary",
    "runs",
    "accuracy-by-task",
    "applications",
    "accuracy-vs-length",
    "recall-vs-state",
    "learning-curves",
    "speed",
    "extra-metrics",
)


def fabricate(store: ResultsStore) -> None:
    """Two tasks, three layer combinations, two sequence lengths, curves, extra metrics,
    an application run, a failed run with a hostile error, a hostile config value and run
    id, speed rows."""
    n = 0
    for task in ("mqar", "copy"):
        for layers in (["attention", "attention"], ["gru", "gru"], ["gru", "attention"]):
            for seq_len in (64, 256):
                n += 1
                acc = {"attention": 0.9, "gru": 0.4}[layers[0]] - (seq_len == 256) * 0.2
                config = {
                    "task": {"name": task, "seq_len": seq_len, "num_kv_pairs": seq_len // 8},
                    "note": EVIL if n == 1 else "plain",
                }
                store.write_record(
                    RunRecord(
                        run_id=f"run-{n}" if n != 2 else "run-<b>2</b>",
                        config=config,
                        config_hash=config_hash(config),
                        status="completed",
                        task=task,
                        layers=layers,
                        suite="quick",
                        started_at=float(n),
                        state_bytes=seq_len * 256 if "attention" in layers else 2048,
                        params=12_345,
                        wall_seconds=1.5,
                        metrics={
                            "accuracy": acc,
                            "retention": acc / 2,
                            "accuracy_by_distance": {"8": acc, "32": acc / 2},
                        },
                        curve=[{"epoch": e, "accuracy": acc * (e + 1) / 3} for e in range(3)],
                    )
                )
    store.write_record(
        RunRecord(
            run_id="app",
            config={"task": {"name": "forecast", "series": "co2"}},
            config_hash="1" * 16,
            status="completed",
            task="forecast",
            layers=["gru"],
            suite="apps",
            metrics={"mae": 0.04, "naive_mae": 0.09, "seasonal_naive_mae": 0.13},
        )
    )
    store.write_record(
        RunRecord(
            run_id="broken",
            config={},
            config_hash="0" * 16,
            status="failed",
            task="mqar",
            layers=["gru"],
            suite="quick",
            error="<img src=x onerror=alert(1)> exploded",
        )
    )
    store.add_speed_rows(
        {"layer": layer, "seq_len": t, "mode": "infer", "tokens_per_s": 1e6 / t, "machine": "cpu"}
        for layer in ("gru", "attention")
        for t in (128, 1024)
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """The report of the fabricated store, written once for the module (figures are slow)."""
    root = tmp_path_factory.mktemp("report")
    store = ResultsStore(root / "memzoo.db")
    fabricate(store)
    path = write_report(store, root / "out" / "report.html")
    return path, path.read_text(encoding="utf-8")


def test_report_has_every_section_with_figures(report):
    path, page = report
    assert path.name == "report.html" and page.startswith("<!DOCTYPE html>")
    titles = {section.id: section.title for section in SECTIONS}
    for section_id in FABRICATED_SECTIONS:
        assert f'<section id="{section_id}">' in page, section_id
        assert f"<h2>{titles[section_id]}</h2>" in page
    figures = re.findall(r'<figure class="plot" id="fig-[^"]+">(<svg .*?</svg>)', page, re.S)
    assert len(figures) >= 7  # bars, 2 x length, state, curves, speed, distance (per setting)
    assert all(ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg" for svg in figures)
    assert "<img" not in page.split('<section id="runs">')[0]  # no PNG left


def test_report_escapes_everything_from_the_store(report):
    _, page = report
    assert "<script" not in page  # the report needs no script at all
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert "<b>2</b>" not in page and "run-&lt;b&gt;2&lt;/b&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt; exploded" in page


def test_report_tables_hold_the_numbers(report):
    _, page = report
    # Layer combinations collapse when all layers are equal.
    assert "<th>attention</th><th>gru</th><th>gru+attention</th>" in page
    assert "attention+attention" not in page
    # A row per task setting; mqar L=64 x attention: one run (one seed) at 0.9.
    row = "<td>mqar (num_kv_pairs=8, seq_len=64)</td><td>0.900 (n=1)</td><td>0.400 (n=1)</td><td>0.400 (n=1)</td>"
    assert row in page
    # Extra metrics: mean retention per task and layer (attention 0.45, 0.35; gru 0.2, 0.1).
    assert "<td>retention</td><td>mqar</td><td>0.4 (n=2)</td><td>0.15 (n=2)</td>" in page
    assert "14 runs: 13 completed, 1 failed." in page
    assert "<td>forecast (co2)</td><td>gru</td><td>MAE (standardised)</td>" in page


def test_layer_label():
    assert layer_label(["attention", "attention"]) == "attention"
    assert layer_label(["gru", "attention", "gru"]) == "gru+attention+gru"
    assert layer_label(["deltanet"]) == "deltanet"


def _data(**run_kwargs) -> ReportData:
    run = RunRecord(
        run_id="r",
        config={},
        config_hash="h",
        status="completed",
        task="t",
        layers=["gru"],
        metrics={"accuracy": 0.5},
        **run_kwargs,
    )
    return ReportData(runs=[run], speed=[], source="memory")


def test_sections_without_data_are_omitted():
    page = build_report_html(_data())  # no curve, no state bytes, no seq_len, no speed
    assert '<section id="runs">' in page and '<section id="accuracy-by-task">' in page
    for absent in ("speed", "learning-curves", "recall-vs-state", "accuracy-vs-length", "extra-metrics"):
        assert f'id="{absent}"' not in page and f'href="#{absent}"' not in page
    empty = build_report_html(ReportData(runs=[], speed=[]))
    assert "holds no runs yet" in empty and 'id="accuracy-by-task"' not in empty


def test_custom_sections_plug_in():
    extra = Section("retention", "Retention <over time>", lambda data: f"<p>{len(data.runs)}</p>")
    never = Section("never", "Never", lambda data: None)
    page = build_report_html(_data(), [Section("runs", "Runs", runs_table), extra, never])
    assert '<section id="retention">\n<h2>Retention &lt;over time&gt;</h2>\n<p>1</p>' in page
    assert 'id="never"' not in page and 'id="accuracy-by-task"' not in page
    with pytest.raises(MemzooError, match="unique"):
        build_report_html(_data(), [extra, extra])
    assert accuracy_by_task(ReportData(runs=[])) is None


def test_missing_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(MemzooError, match=re.escape("pip install memzoo[plot]")):
        write_report(ResultsStore(tmp_path / "memzoo.db"), tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_missing_database_is_an_error_not_a_new_file(tmp_path):
    with pytest.raises(MemzooError, match="no results store"):
        write_report(tmp_path / "absent.db", tmp_path / "report.html")
    assert not (tmp_path / "absent.db").exists()
