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
import time
from typing import Any

from memzoo.report.data import (
    ReportData,
    caption,
    esc,
    group,
    html_table,
    number,
)
from memzoo.report.plots import (
    color_map,
    figure_html,
    legend,
    log2_x_axis,
    subplots,
    use_log_x,
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
    machines = {r["machine"] for r in rows}
    layers = sorted({r["layer"] for r in rows})
    colors = color_map(layers)
    by_mode = group((r["mode"], r) for r in rows if (number(r["tokens_per_s"]) or 0) > 0)
    if not by_mode:
        return table
    fig, axes = subplots(len(by_mode))
    markers = {m: "osD^v<>"[i % 7] for i, m in enumerate(sorted(machines, key=str))}
    for ax, (mode, mode_rows) in zip(axes, sorted(by_mode.items())):
        lines = group(((r["layer"], r["machine"]), r) for r in mode_rows)
        for (layer, machine), line in sorted(lines.items(), key=lambda kv: str(kv[0])):
            line = sorted(line, key=lambda r: r["seq_len"])
            label = layer if len(machines) == 1 else f"{layer} @ {machine}"
            ax.plot(
                [r["seq_len"] for r in line],
                [r["tokens_per_s"] for r in line],
                marker=markers[machine],
                color=colors[layer],
                label=label,
            )
        if use_log_x([r["seq_len"] for r in mode_rows]):
            log2_x_axis(ax, [r["seq_len"] for r in mode_rows])
        ax.set_yscale("log")
        ax.set_title(str(mode))
        ax.set_xlabel("sequence length")
        ax.set_ylabel("tokens / s")
        legend(ax)
    return (
        caption("Latest measurement per machine, layer, mode and sequence length.")
        + table
        + figure_html(fig, "throughput against sequence length")
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
    runs), number-keyed maps as line plots (a figure per metric, a panel per task)."""
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
                series.append(((name, r.task), (label, points)))
    if not scalars and not series:
        return None
    parts = [
        caption(
            "Metrics beyond accuracy that runs recorded, averaged over the runs of each task and "
            "layer combination (n = number of runs)."
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
        fig, axes = subplots(len(by_task))
        for ax, (task, lines) in zip(axes, sorted(by_task.items())):
            cells = group(((label, x), y) for label, points in lines for x, y in points)
            for label in sorted({lb for lb, _ in cells}):
                xs = sorted(x for lb, x in cells if lb == label)
                ys = [sum(cells[(label, x)]) / len(cells[(label, x)]) for x in xs]
                ax.plot(xs, ys, marker="o", color=colors[label], label=label)
            if use_log_x([x for _, x in cells]):
                log2_x_axis(ax, [x for _, x in cells])
            ax.set_title(task)
            ax.set_ylabel(name)
            legend(ax)
        parts.append(f"<h3>{esc(name)}</h3>" + figure_html(fig, f"{name} (mean over runs)"))
        parts.append(_series_table(by_task))
    return "".join(parts)


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
