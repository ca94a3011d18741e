"""Report sections that depend on what exists: speed rows and any extra run metrics.

``extra_metrics`` is the generic hook for metrics beyond accuracy: a task that writes
``metrics["retention"] = 0.8`` (a number) shows up in its table, and one that writes
``metrics["accuracy_by_distance"] = {"16": 0.9, "64": 0.6}`` (numbers keyed by a number)
gets a line plot, with no change to the report. A dedicated section for such a metric can
still be added to ``memzoo.report.html.SECTIONS``.
"""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from memzoo.report.data import (
    ReportData,
    caption,
    esc,
    group,
    html_table,
    number,
    setting_label,
)
from memzoo.report.plots import (
    AXIS,
    SPREAD_NOTE,
    accuracy_axis,
    color_map,
    figure_html,
    legend,
    line_with_band,
    log_y_axis,
    mean_spread,
    panel_titles,
    subplots,
    title,
    varies,
    x_axis,
)
from memzoo.results.store import RESULT_STATUSES

SPEED_HEADER = [
    "measured",
    "machine",
    "layer",
    "seq len",
    "mode",
    "tokens/s",
    "vs reference",
    "state bytes",
    "MFU",
    "extra",
]


def _latest_speed_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (machine, layer, mode, seq_len): a re-measurement replaces the older."""
    latest = {(r["machine"], r["layer"], r["mode"], r["seq_len"]): r for r in rows}
    return sorted(latest.values(), key=lambda r: (r["mode"], r["layer"], str(r["machine"]), r["seq_len"]))


def speed(data: ReportData) -> str | None:
    """Throughput table and tokens/s against sequence length (a panel per mode); None
    when the speed benchmark has not run."""
    if not data.speed:
        return None
    rows = _latest_speed_rows(data.speed)
    table = html_table(
        SPEED_HEADER,
        [
            [
                time.strftime("%Y-%m-%d %H:%M", time.localtime(r["created_at"])),
                r["machine"],
                r["layer"],
                r["seq_len"],
                r["mode"],
                r["tokens_per_s"],
                r["ratio_vs_reference"],
                r["state_bytes"],
                r["mfu"],
                json.dumps(r["extra"], sort_keys=True) if r["extra"] else None,
            ]
            for r in rows
        ],
    )
    by_mode = group((r["mode"], r) for r in rows if (number(r["tokens_per_s"]) or 0) > 0)
    plotted = {
        mode: mode_rows for mode, mode_rows in by_mode.items() if varies(r["seq_len"] for r in mode_rows)
    }
    single = [f"{m}: {rs[0]['seq_len']} tokens" for m, rs in sorted(by_mode.items()) if m not in plotted]
    text = "Latest measurement per machine, layer, mode and sequence length."
    if single:
        text += " Not plotted, one sequence length: " + "; ".join(single) + "."
    figure = _speed_figure(plotted, rows) if plotted else ""
    return caption(text) + table + figure


def _speed_figure(by_mode: dict[str, list[dict[str, Any]]], rows: list[dict[str, Any]]) -> str:
    """Tokens/s against sequence length (log-log), a panel per mode, a line per layer (and
    machine, a marker each, when several measured)."""
    machines = sorted({r["machine"] for r in rows}, key=str)
    colors = color_map(sorted({r["layer"] for r in rows}))
    markers = {m: "osD^v<>"[i % 7] for i, m in enumerate(machines)}
    fig, axes = subplots(len(by_mode))
    points = []
    for ax, (mode, mode_rows) in zip(axes, sorted(by_mode.items())):
        lines = group(((r["layer"], r["machine"]), r) for r in mode_rows)
        for (layer, machine), line in sorted(lines.items(), key=lambda kv: str(kv[0])):
            line = sorted(line, key=lambda r: r["seq_len"])
            label = layer if len(machines) == 1 else f"{layer} @ {machine}"
            xs, ys = [r["seq_len"] for r in line], [r["tokens_per_s"] for r in line]
            line_with_band(ax, xs, ys, [None] * len(xs), label, colors[layer], marker=markers[machine])
            points += [
                {"mode": mode, "layer": layer, "machine": machine, "seq_len (tokens)": x, "tokens_per_s": y}
                for x, y in zip(xs, ys)
            ]
        x_axis(ax, [r["seq_len"] for r in mode_rows], AXIS["seq_len"])
        log_y_axis(ax, AXIS["throughput"])
        title(ax, str(mode))
    legend(fig)
    return figure_html(
        fig,
        "throughput against sequence length",
        name="speed",
        rows=points,
        caption="Throughput (tokens/s, log scale) against sequence length: the median of timed "
        "repetitions after warm-up, one measurement per point (no spread stored).",
    )


def _series(value: Any) -> list[tuple[float, float]] | None:
    """``{"16": 0.9, "64": 0.6}`` -> ``[(16.0, 0.9), (64.0, 0.6)]``; None if not such a map."""
    if not isinstance(value, dict) or not value:
        return None
    points = []
    for key, y in value.items():
        try:
            x = float(key)
        except (TypeError, ValueError):
            return None
        if not math.isfinite(x) or number(y) is None:
            return None
        points.append((x, float(y)))
    return sorted(points)


def extra_metrics(data: ReportData) -> str | None:
    """Every metric beyond ``accuracy`` in finished runs: numbers as a table (mean over
    runs of a task), number-keyed maps as line plots (a figure per metric, a panel per task
    setting whose runs hold two or more keys) with the table of their numbers."""
    finished = [r for r in data.runs if r.status in RESULT_STATUSES]
    scalars: list[tuple[tuple[str, str, str], float]] = []
    series: list[tuple[tuple[str, str], tuple[str, list[tuple[float, float]]]]] = []
    for r in finished:
        label = data.label(r)
        for name, value in r.metrics.items():
            if name == "accuracy":
                continue
            if number(value) is not None:
                scalars.append(((name, r.task, label), float(value)))
            elif (points := _series(value)) is not None:
                series.append(((name, setting_label(r)), (label, points)))
    if not scalars and not series:
        return None
    parts = [
        caption(
            "Metrics beyond accuracy that runs recorded, averaged over the runs of each task (the "
            "numbers; series: each task setting) and layer combination (n = number of runs)."
        )
    ]
    if scalars:
        cells = group(scalars)
        labels = sorted({label for _, _, label in cells})
        rows = []
        for name, task in sorted({(n, t) for n, t, _ in cells}):
            row = [name, task]
            for label in labels:
                v = cells.get((name, task, label))
                row.append(f"{sum(v) / len(v):.4g} (n={len(v)})" if v else "–")
            rows.append(row)
        parts.append(html_table(["metric", "task", *labels], rows))
    colors = color_map(data.labels())
    by_metric = group((name, (task, entry)) for (name, task), entry in series)
    for name, entries in sorted(by_metric.items()):
        by_task = group(entries)
        plotted = {t: lines for t, lines in by_task.items() if varies(x for _, pts in lines for x, _ in pts)}
        parts.append(f"<h3>{esc(name)}</h3>")
        if len(plotted) < len(by_task):
            parts.append(
                caption(
                    "Not plotted, one key among the runs: " + ", ".join(sorted(set(by_task) - set(plotted)))
                )
            )
        if plotted:
            parts.append(_series_figure(name, plotted, colors))
        parts.append(_series_table(by_task))
    return "".join(parts)


# Units of the words a series metric is named with (``accuracy_by_distance``).
SERIES_AXES = {
    "accuracy": "accuracy (fraction)",
    "distance": "distance (tokens)",
    "length": "sequence length (tokens)",
    "seq_len": "sequence length (tokens)",
    "phase": "training phase",
    "steps": "optimiser steps",
}
FRACTIONS = ("accuracy", "recall", "precision", "retention", "f1")


def series_axes(name: str) -> tuple[str, str]:
    """The x and y axis labels of series metric ``name``: ``accuracy_by_distance`` ->
    ``("distance (tokens)", "accuracy (fraction)")``; an unknown word stays as it is."""
    found = re.match(r"(.+?)_(?:by|after|per|vs|at)_(.+)$", name)
    y, x = (found.group(1), found.group(2)) if found else (name, "key")
    xlabel = SERIES_AXES.get(x, x.replace("_", " "))
    ylabel = SERIES_AXES.get(y, y.replace("_", " "))
    if y not in SERIES_AXES and y.split("_")[0] in FRACTIONS:
        ylabel += " (fraction)"
    return xlabel, ylabel


def _series_figure(name: str, by_task: dict[str, list[tuple[str, list[tuple[float, float]]]]], colors) -> str:
    """A panel per task, a line per label through the mean over runs at each key (± std)."""
    xlabel, ylabel = series_axes(name)
    fig, axes = subplots(len(by_task))
    rows = []
    titles = panel_titles(by_task)
    for ax, (task, lines) in zip(axes, sorted(by_task.items())):
        cells = group(((label, x), y) for label, points in lines for x, y in points)
        for label in sorted({lb for lb, _ in cells}):
            xs = sorted(x for lb, x in cells if lb == label)
            stats = [mean_spread(cells[(label, x)]) for x in xs]
            line_with_band(ax, xs, [m for m, _, _ in stats], [s for _, s, _ in stats], label, colors[label])
            rows += [
                {"task": task, "layers": label, xlabel: x, f"mean {name}": m}
                | {"std_over_runs": s if n > 1 else None, "n_runs": n}
                for x, (m, s, n) in zip(xs, stats)
            ]
        x_axis(ax, [x for _, x in cells], xlabel)
        if ylabel.endswith("(fraction)") and all(0 <= y <= 1 for ys in cells.values() for y in ys):
            accuracy_axis(ax, ylabel)
        else:
            ax.set_ylabel(ylabel)
        title(ax, titles[task])
    legend(fig)
    spread = SPREAD_NOTE.replace("over seeds", "over runs")
    return figure_html(
        fig,
        f"{name} (mean over runs)",
        name=f"extra-{name}",
        rows=rows,
        caption=f"{name}: mean over runs; {spread}.",
    )


def _series_table(by_task: dict[str, list[tuple[str, list[tuple[float, float]]]]]) -> str:
    """The numbers behind a series figure: a row per (task, label), a column per x, each
    cell the mean over runs (n); so a reader can quote them."""
    xs = sorted({x for lines in by_task.values() for _, points in lines for x, _ in points})
    rows = []
    for task, lines in sorted(by_task.items()):
        cells = group(((label, x), y) for label, points in lines for x, y in points)
        for label in sorted({lb for lb, _ in cells}):
            row = [task, label]
            for x in xs:
                ys = cells.get((label, x))
                row.append(f"{sum(ys) / len(ys):.4g} (n={len(ys)})" if ys else "–")
            rows.append(row)
    return html_table(["task", "layers", *(f"{x:g}" for x in xs)], rows)
