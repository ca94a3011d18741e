"""The benchmark report: one self-contained HTML file built only from the results store.

The report is the list :data:`SECTIONS` of :class:`~memzoo.report.data.Section`
(``id``, ``title``, ``render(data) -> html | None``). A section whose ``render`` returns
None (nothing to show, e.g. no speed rows yet) is left out, with its entry in the table of
contents. To add a section (accuracy against distance, retention, ...), write a function
of :class:`~memzoo.report.data.ReportData` returning escaped HTML, and append
``Section("my-id", "My title", my_function)`` to :data:`SECTIONS` (or pass ``sections=``).

Figures are inline SVG (crisp at any zoom, text as text), each in a ``<figure>`` with its
caption and a link that downloads the plotted numbers as CSV (a ``data:`` URI), so the file
can be mailed or archived on its own. They are drawn in one style, with the spread over
seeds and legends off the data (:mod:`memzoo.report.plots`), and need matplotlib, the
``plot`` extra (``pip install memzoo[plot]``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from memzoo.errors import MemzooError
from memzoo.files import check_output_file, write_file
from memzoo.report import apps as report_apps
from memzoo.report import budgets as report_budgets
from memzoo.report import continual as report_continual
from memzoo.report import curves as report_curves
from memzoo.report import extra as report_extra
from memzoo.report import inside as report_inside
from memzoo.report import real as report_real
from memzoo.report import sections as report_sections
from memzoo.report import summary as report_summary
from memzoo.report.data import ReportData, Section, esc
from memzoo.report.plots import require_matplotlib
from memzoo.results.store import ResultsStore

__all__ = ["SECTIONS", "ReportData", "Section", "build_report_html", "write_report"]

SECTIONS: list[Section] = [
    Section("summary", "What the runs found", report_summary.summary),
    Section("runs", "Runs", report_sections.runs_table),
    Section("accuracy-by-task", "Accuracy by task and layer", report_sections.accuracy_by_task),
    Section("applications", "Applications", report_apps.applications),
    Section("real-sequences", "Real sequences", report_real.real_sequences),
    Section(
        "accuracy-vs-length",
        "Accuracy vs sequence length, key-value pairs and distance",
        report_sections.accuracy_vs_length,
    ),
    Section("recall-vs-state", "Recall vs memory-state size", report_sections.recall_vs_state),
    Section("equal-budgets", "Long-term memory at equal budgets", report_budgets.equal_budgets),
    Section(
        "continual", "Continual learning: what the shared weights keep", report_continual.continual_learning
    ),
    Section("inside-memories", "Inside the memories", report_inside.inside_memories),
    Section("learning-curves", "Learning curves", report_curves.learning_curves),
    Section("speed", "Speed", report_extra.speed),
    Section("extra-metrics", "Extra metrics", report_extra.extra_metrics),
]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px;
       padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em;
margin-top: 2em; } nav a { margin-right: 1em; } .meta, .caption { color: #555; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left;
         vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafafa; } .error { color: #a00; }
figure.plot { margin: 1em 0 1.5em; }
figure.plot svg { display: block; max-width: 100%; height: auto; }
figure.plot figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; max-width: 60em; }
figure.plot a.csv { margin-left: 0.4em; white-space: nowrap; }
"""


def build_report_html(data: ReportData, sections: Sequence[Section] | None = None) -> str:
    """The whole report page for ``data`` (sections that render None are omitted)."""
    ids = [s.id for s in (SECTIONS if sections is None else sections)]
    if len(set(ids)) != len(ids):
        raise MemzooError(f"report section ids must be unique, got {ids}")
    rendered = []
    for section in SECTIONS if sections is None else sections:
        body = section.render(data)
        if body is not None:
            rendered.append((section, body))
    nav = " ".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s, _ in rendered)
    blocks = "\n".join(
        f'<section id="{esc(s.id)}">\n<h2>{esc(s.title)}</h2>\n{body}\n</section>' for s, body in rendered
    )
    created = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>memzoo benchmark report</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n<h1>memzoo benchmark report</h1>\n"
        f'<p class="meta">{len(data.runs)} runs, {len(data.speed)} speed rows from '
        f"<code>{esc(data.source)}</code>; written {esc(created)}.</p>\n"
        f"<nav>{nav}</nav>\n{blocks}\n</body>\n</html>\n"
    )


def write_report(
    store: ResultsStore | str | Path,
    out_path: str | Path = "results/report.html",
    *,
    sections: Sequence[Section] | None = None,
) -> Path:
    """Write the HTML report of everything in ``store`` to ``out_path``; returns the path.

    Args:
        store: an open :class:`ResultsStore`, or the path of an existing database file.
        out_path: the HTML file; parent folders are created, an older report replaced
            atomically (a reader never sees half a file).
        sections: the sections to render, in order; default :data:`SECTIONS`.

    Raises:
        MemzooError: matplotlib is missing (``pip install memzoo[plot]``), the database
            path does not exist, or the store is not a memzoo database.
    """
    require_matplotlib()
    out = check_output_file(out_path, "--out")
    if not isinstance(store, ResultsStore):
        if not Path(store).is_file():
            raise MemzooError(f"no results store at {store}: run a benchmark first")
        store = ResultsStore(store)
    page = build_report_html(ReportData.from_store(store), sections)
    write_file(out, page)
    return out
