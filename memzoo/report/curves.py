"""The report's learning curves: validation accuracy as training goes, mean ± std over seeds.

A line per cell (:mod:`memzoo.report.cells`: the runs of one setting at the learning rate
picked on validation; of several widths of one layer, the best on validation), a panel per
task setting. The x axis is optimiser steps where every run of the panel stored them
(``steps`` in each curve point), epochs otherwise. A panel whose runs evaluated at a single
point (one epoch) is not drawn: the caption names it.
"""

from __future__ import annotations

from memzoo.report.cells import Cell, result_cells
from memzoo.report.data import ReportData, caption, group, number
from memzoo.report.plots import (
    AXIS,
    SPREAD_NOTE,
    accuracy_axis,
    color_map,
    figure_html,
    legend,
    line_with_band,
    mean_spread,
    panel_titles,
    subplots,
    title,
    varies,
)
from memzoo.report.sections import by_validation, task_label

MARKERS_UP_TO = 12  # a line with more evaluations than this has no point markers


def _x_key(cells: list[Cell]) -> str:
    """``steps`` when every curve point of these cells' runs has a step count, else ``epoch``."""
    points = [p for c in cells for r in c.runs for p in r.curve]
    return "steps" if points and all(number(p.get("steps")) is not None for p in points) else "epoch"


def _mean_curve(cell: Cell, key: str) -> dict[float, tuple[float, float, int]]:
    """``{x: (mean, std, n)}`` of the validation accuracy of the cell's runs at each x."""
    values: dict[float, list[float]] = {}
    for run in cell.runs:
        for i, point in enumerate(run.curve):
            x = number(point.get(key, i + 1 if key == "epoch" else None))
            y = number(point.get("accuracy"))
            if x is not None and y is not None:
                values.setdefault(x, []).append(y)
    return {x: mean_spread(ys) for x, ys in sorted(values.items())}


def learning_curves(data: ReportData) -> str | None:
    """Validation accuracy against training steps (or epochs): a line per layer combination
    (mean ± std over seeds), a panel per task setting; None when no run stored a curve."""
    cells = result_cells(data.runs, data.run_labels)
    chosen = group(((task_label(c), c.label), c) for c in cells if any(r.curve for r in c.runs))
    by_task = group((task, by_validation(cs)) for (task, _), cs in chosen.items())
    if not by_task:
        return None
    panels, single = {}, []
    for task, task_cells in sorted(by_task.items()):
        key = _x_key(task_cells)
        curves = {c.label: _mean_curve(c, key) for c in task_cells}
        if varies(x for curve in curves.values() for x in curve):
            panels[task] = (key, curves)
        else:
            single.append(task)
    text = (
        "Validation accuracy after each epoch of the runs counted in the tables (learning rate "
        "picked on validation): mean over seeds, one line per layer combination."
    )
    if single:
        text += " Not plotted, one evaluation per run: " + "; ".join(single) + "."
    return caption(text) + (_curves_figure(panels, color_map(data.labels())) if panels else "")


def _curves_figure(panels: dict, colors) -> str:
    from matplotlib.ticker import MaxNLocator

    fig, axes = subplots(len(panels), width=3.6, height=2.6)
    rows = []
    titles = panel_titles(panels)
    for ax, (task, (key, curves)) in zip(axes, panels.items()):
        for label, curve in sorted(curves.items()):
            xs = list(curve)
            means, stds = [m for m, _, _ in curve.values()], [s for _, s, _ in curve.values()]
            marker = "o" if len(xs) <= MARKERS_UP_TO else None
            line_with_band(ax, xs, means, stds, label, colors[label], marker=marker)
            rows += [
                {"task": task, "layers": label, AXIS[key]: x, "mean_validation_accuracy": m}
                | {"std_over_seeds": s if n > 1 else None, "n_seeds": n}
                for x, (m, s, n) in curve.items()
            ]
        ax.set_xlabel(AXIS[key])
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, steps=[1, 2, 2.5, 5, 10]))
        accuracy_axis(ax, AXIS["validation"])
        title(ax, titles[task])
    legend(fig)
    return figure_html(
        fig,
        "learning curves",
        name="learning-curves",
        rows=rows,
        caption=f"Validation accuracy during training, mean over seeds; {SPREAD_NOTE}.",
    )
