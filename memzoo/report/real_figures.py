"""The figures of the "Real sequences" section: ``text_lm``'s long-context curves and
``needle_text``'s length x depth heatmaps, both from the cells of
:mod:`memzoo.report.real_cells` (the picked learning rate's runs, one per seed).

**Context curve** (``context_bpb_<C>``, :mod:`memzoo.tasks._text_lm_eval`): the same test spans
scored with C bytes of their document before them; a line per layer combination through the
mean bits per byte over seeds at each C, a band of ± 1 standard deviation. A layer whose
state grows with every token (full attention) is not scored past its training window: its run
stores None there with ``context_bpb_reason``, so its line ends and the caption says why. A
point is drawn only where every seed of the cell scored it.

**Needle heatmap** (``exact_match_by_length_depth``): one per layer combination, drawn by
:func:`memzoo.report.needle_heatmap.needle_heatmap_html`, each cell the mean exact match
over seeds (± std).
"""

from __future__ import annotations

import re
from typing import Any

from memzoo.report.data import number
from memzoo.report.needle_heatmap import needle_heatmap_html, runs_per_cell
from memzoo.report.plots import SPREAD_NOTE, color_map, figure_html, legend, line_with_band, subplots, title
from memzoo.report.real_cells import RealCell, metrics_of

CONTEXT_KEY = re.compile(r"^context_bpb_(\d+)$")
GRID_KEY = "exact_match_by_length_depth"


def context_points(cell: RealCell) -> tuple[dict[int, list[float]], list[int]]:
    """``({C: [bpb per seed]}, [C not scored by some seed])`` of a ``text_lm`` cell."""
    found: dict[int, list[float | None]] = {}
    for run in cell.runs:
        for key, value in metrics_of(run).items():
            match = CONTEXT_KEY.match(str(key))
            if match:
                found.setdefault(int(match.group(1)), []).append(number(value))
    scored = {c: v for c, v in found.items() if len(v) == len(cell.runs) and None not in v}
    return scored, sorted(set(found) - set(scored))


def _reasons(cell: RealCell) -> list[str]:
    texts = {metrics_of(r).get("context_bpb_reason") for r in cell.runs}
    return sorted(t for t in texts if isinstance(t, str) and t)


def context_figure(panels: dict[str, list[RealCell]], labels: list[str]) -> tuple[str, list[str]] | None:
    """The context-curve figure (a panel per ``text_lm`` setting) and one sentence per layer
    combination that misses points; None when no cell stored two contexts."""
    drawn = {}
    for setting, cells in panels.items():
        curves = {c.label: (c, *context_points(c)) for c in cells}
        if any(len(points) >= 2 for _, points, _ in curves.values()):
            drawn[setting] = curves
    if not drawn:
        return None
    colors = color_map(labels)
    fig, axes = subplots(len(drawn), ncols=2, width=4.4, height=3.2)
    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    for ax, (setting, curves) in zip(axes, drawn.items()):
        contexts = sorted({c for _, points, gone in curves.values() for c in [*points, *gone]})
        position = {c: i for i, c in enumerate(contexts)}  # evenly spaced: C grows ~4x a step
        for label, (cell, points, gone) in sorted(curves.items()):
            xs = sorted(points)
            means = [sum(points[c]) / len(points[c]) for c in xs]
            spreads = [_std(points[c]) for c in xs]
            if xs:
                line_with_band(ax, [position[c] for c in xs], means, spreads, label, colors[label])
            rows += [
                {"setting": setting, "layers": label, "context (bytes)": c, "mean bpb": m}
                | {"std_over_seeds": s if len(points[c]) > 1 else None, "n_seeds": len(points[c])}
                for c, m, s in zip(xs, means, spreads)
            ]
            if gone:
                why = "; ".join(_reasons(cell)) or "not stored by every seed"
                missing.append(f"{label} at C = {', '.join(map(str, gone))}: {why}")
        ax.set_xticks(range(len(contexts)), [str(c) for c in contexts])
        ax.set_xlabel("context before the scored span, C (bytes)")
        ax.set_ylabel("bits per byte (test spans)")
        title(ax, setting)
    legend(fig)
    text = (
        "Bits per byte of the same test spans read with C bytes of their document before them "
        f"(lower is better; x evenly spaced by C); {SPREAD_NOTE}."
    )
    return figure_html(
        fig, "bits per byte against context", name="real-context-curve", rows=rows, caption=text
    ), missing


def _std(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def stored_grid(run_metrics: dict[str, Any]) -> dict[tuple[int, float], float] | None:
    """The run's ``exact_match_by_length_depth`` as ``{(length, depth): value}``, or None
    when it is missing or malformed (a key that is not a number, a value that is not one)."""
    grid = run_metrics.get(GRID_KEY)
    if not isinstance(grid, dict) or not grid:
        return None
    out = {}
    for length, row in grid.items():
        if not isinstance(row, dict):
            return None
        for depth, value in row.items():
            try:
                cell = (int(length), float(depth))
            except (TypeError, ValueError):
                return None
            if number(value) is None or not 0.0 <= cell[1] <= 1.0:
                return None
            out[cell] = number(value)
    return out


def needle_heatmaps(setting_index: int, cells: list[RealCell]) -> list[str]:
    """One heatmap figure per layer combination of a ``needle_text`` setting that stored its
    grid (every seed's grid averaged)."""
    figures = []
    for i, cell in enumerate(sorted(cells, key=lambda c: c.label)):
        grids = [g for r in cell.runs if (g := stored_grid(metrics_of(r))) is not None]
        values = runs_per_cell(grids)
        if not values:
            continue
        caption = (
            f"{cell.label} on {cell.setting}: exact match of the pass key by context length and "
            f"needle depth, mean over {len(grids)} seed(s) (± std over seeds where n ≥ 2)."
        )
        figures.append(needle_heatmap_html(values, name=f"real-needle-{setting_index}-{i}", caption=caption))
    return figures
