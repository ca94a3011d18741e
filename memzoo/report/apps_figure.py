"""The Applications figure: each application's models next to its model-free baselines.

A panel per application and metric, a horizontal bar per layer combination (its mean over
runs, ± one standard deviation where several runs) in the layer's colour, then a grey bar per
baseline (its mean over the runs that stored it), named on the axis: no legend. The axis says
the metric, its unit and which way is better. A panel with fewer than two bars is not drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from memzoo.report.plots import bars, color_map, figure_html, mean_spread, subplots, title

BASELINE_COLOR = "#9e9e9e"
UNITS = {"accuracy": "fraction", "hr@10": "fraction", "chrf": "0–100", "mae": "series std", "wer": "fraction"}


class AppPoint(NamedTuple):
    """One application run's numbers: its panel, its series label, its metric and baselines."""

    app: str  # the application, e.g. "forecast (co2)"
    metric: str  # the metric's label, e.g. "MAE (standardised)"
    key: str  # the metrics key, e.g. "mae"
    higher_is_better: bool
    label: str  # the run's layer combination (with its variant)
    value: float
    baselines: Sequence[tuple[str, float]]  # (baseline label, value), strongest first


def _panels(points: Sequence[AppPoint]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """``{(app, metric): [row]}``: a row per bar, models (sorted) first, then baselines."""
    grouped: dict[tuple[str, str], list[AppPoint]] = {}
    for point in points:
        grouped.setdefault((point.app, point.metric), []).append(point)
    panels = {}
    for (app, metric), entries in grouped.items():
        series: dict[tuple[str, str], list[float]] = {}
        for p in entries:
            series.setdefault(("model", p.label), []).append(p.value)
            for name, value in p.baselines:
                series.setdefault(("baseline", name), []).append(value)
        rows = []
        for (kind, name), values in sorted(series.items(), key=lambda kv: (kv[0][0] != "model", kv[0][1])):
            mean, std, n = mean_spread(values)
            rows.append(
                {"application": app, "metric": metric, "series": name, "kind": kind}
                | {"mean": mean, "std_over_runs": std if n > 1 else None, "n_runs": n}
            )
        if len(rows) >= 2:
            panels[(app, metric)] = rows
    return panels


def app_figure(points: Sequence[AppPoint], labels: Sequence[str]) -> str:
    """The figure (HTML) of the application runs ``points``; empty when no panel has two bars.
    ``labels``: every run label of the report, for the fixed colour of each."""
    panels = _panels(points)
    if not panels:
        return ""
    specs: Mapping[tuple[str, str], AppPoint] = {(p.app, p.metric): p for p in points}
    colors = color_map(list(labels))
    most = max(len(rows) for rows in panels.values())
    fig, axes = subplots(len(panels), ncols=2, width=4.6, height=0.9 + 0.3 * most)
    for ax, ((app, metric), rows) in zip(axes, sorted(panels.items())):
        for i, row in enumerate(rows):
            color = colors.get(row["series"], "C0") if row["kind"] == "model" else BASELINE_COLOR
            bars(ax, [i], [row["mean"]], [row["std_over_runs"]], label=None, color=color)
        ax.set_yticks(range(len(rows)), [r["series"] for r in rows])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        spec = specs[(app, metric)]
        unit = UNITS.get(spec.key, "")
        better = "higher" if spec.higher_is_better else "lower"
        ax.set_xlabel(f"{metric}{f' ({unit})' if unit else ''}\n{better} is better")
        title(ax, app)
    return figure_html(
        fig,
        "application metrics against model-free baselines",
        name="applications",
        rows=[row for rows in panels.values() for row in rows],
        caption="Each application's held-out metric: coloured, the models (mean over runs; error bars "
        "± 1 standard deviation over runs where n ≥ 2, n per bar in the CSV); grey, the model-free "
        "baselines the runs stored.",
    )
