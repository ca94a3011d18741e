"""The needle-in-a-haystack heatmap: accuracy over context length (x) and needle depth (y).

The layout of the original needle-in-a-haystack pressure test (G. Kamradt, 2023) and of the
figures that followed it: one column per context length, one row per depth (0 % — the
needle at the very start of the context — at the top, 100 % — right before the question —
at the bottom), each cell coloured from red (0) through yellow to green (1) and labelled
with its value. A cell measured over several runs (seeds) shows the mean with ``± std``
below it (sample standard deviation); a cell never measured is grey and labelled ``–``.

``accuracy`` maps ``(length, depth)`` (depth a fraction in [0, 1]) to a fraction, or to a
list of fractions (one per run). :func:`grid_from_metric` reads the form a run stores
(``needle_text``'s ``exact_match_by_length_depth``: ``{"128": {"0.25": 0.9}}``).

>>> grid_from_metric({"128": {"0": 1.0, "0.5": 0.75}, "256": {"0": 0.5}})
{(128, 0.0): 1.0, (128, 0.5): 0.75, (256, 0.0): 0.5}
>>> heatmap_rows({(128, 0.5): [0.5, 1.0]}, "exact match")[0]["std_over_runs"]
0.3535533905932738
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from memzoo.errors import MemzooError
from memzoo.files import check_output_file, write_file
from memzoo.report.plots import compact, figure_html, mean_spread, require_matplotlib, style, subplots
from memzoo.report.svg import SVG_METADATA

Cell = tuple[int, float]
Values = Mapping[Cell, "float | Sequence[float]"]
COLORMAP = "RdYlGn"  # red 0 -> yellow -> green 1
EXACT_MATCH = "exact match (fraction)"


def grid_from_metric(metric: Mapping[str, Mapping[str, float]]) -> dict[Cell, float]:
    """``{"<length>": {"<depth>": value}}`` (as a run stores it) -> ``{(length, depth): value}``."""
    return {
        (int(length), float(depth)): value for length, row in metric.items() for depth, value in row.items()
    }


def _stats(value: float | Sequence[float]) -> tuple[float, float, int]:
    values = [float(value)] if isinstance(value, (int, float)) else [float(v) for v in value]
    if not values:
        raise MemzooError("a heatmap cell holds no values")
    return mean_spread(values)


def heatmap_rows(accuracy: Values, label: str = EXACT_MATCH) -> list[dict[str, Any]]:
    """The drawn numbers, one dict per cell (length, depth, mean, spread, n), for the CSV."""
    rows = []
    for (length, depth), value in sorted(accuracy.items()):
        mean, spread, n = _stats(value)
        rows.append(
            {"context length": length, "depth (fraction)": depth, f"mean {label}": mean}
            | {"std_over_runs": spread if n > 1 else None, "n_runs": n}
        )
    return rows


def _check(accuracy: Values) -> tuple[list[int], list[float]]:
    if not accuracy:
        raise MemzooError("a needle heatmap needs at least one (length, depth) cell")
    for _, depth in accuracy:
        if not 0.0 <= float(depth) <= 1.0:
            raise MemzooError(f"needle depths are fractions in [0, 1]; got {depth}")
    return sorted({int(t) for t, _ in accuracy}), sorted({float(d) for _, d in accuracy})


def _annotate(ax: Any, row: int, col: int, stats: tuple[float, float, int] | None) -> None:
    if stats is None:
        ax.text(col, row, "–", ha="center", va="center", color="#555555")
        return
    mean, spread, n = stats
    text = f"{mean:.2f}" + (f"\n±{spread:.2f}" if n > 1 else "")
    color = "white" if mean < 0.15 or mean > 0.85 else "black"  # the dark ends of the map
    ax.text(col, row, text, ha="center", va="center", color=color, fontsize="small")


def needle_heatmap_figure(
    accuracy: Values, *, label: str = EXACT_MATCH, unit: str = "bytes", title: str | None = None
) -> Any:
    """The heatmap as a matplotlib ``Figure`` in the report's style (see the module)."""
    require_matplotlib()
    import numpy as np
    from matplotlib import colormaps

    lengths, depths = _check(accuracy)
    cells = {(int(t), float(d)): _stats(v) for (t, d), v in accuracy.items()}
    matrix = np.full((len(depths), len(lengths)), np.nan)  # [depths, lengths]
    for (t, d), (mean, _, _) in cells.items():
        matrix[depths.index(d), lengths.index(t)] = mean
    cmap = colormaps[COLORMAP].with_extremes(bad="#e6e6e6")
    fig, (ax,) = subplots(1, width=1.8 + 0.85 * len(lengths), height=1.4 + 0.5 * len(depths))
    with style():
        image = ax.imshow(matrix, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto", origin="upper")
        ax.grid(False)
        for row, d in enumerate(depths):
            for col, t in enumerate(lengths):
                _annotate(ax, row, col, cells.get((t, d)))
        ax.set_xticks(range(len(lengths)), [compact(t) for t in lengths])
        ax.set_yticks(range(len(depths)), [f"{100 * d:g}%" for d in depths])
        ax.set_xlabel(f"context length ({unit})")
        ax.set_ylabel("needle depth (% of context)")
        fig.colorbar(image, ax=ax, label=label, fraction=0.08, pad=0.03)
        if title:
            ax.set_title(title)
    return fig


def needle_heatmap_html(
    accuracy: Values, *, name: str, label: str = EXACT_MATCH, unit: str = "bytes", caption: str | None = None
) -> str:
    """The heatmap as a report figure (inline SVG with its numbers as a CSV link,
    :func:`memzoo.report.plots.figure_html`); ``name`` must be unique in the report."""
    fig = needle_heatmap_figure(accuracy, label=label, unit=unit)
    alt = f"needle in a haystack: {label} by context length and needle depth"
    return figure_html(fig, alt, name=name, rows=heatmap_rows(accuracy, label), caption=caption)


def draw_needle_heatmap(
    accuracy: Values,
    path: str | Path,
    *,
    label: str = EXACT_MATCH,
    unit: str = "bytes",
    title: str | None = None,
) -> Path:
    """Write the heatmap of ``accuracy`` as an SVG file at ``path`` (its folder created;
    written atomically through :mod:`memzoo.files`) and return the path."""
    out = check_output_file(path, "heatmap file")
    fig = needle_heatmap_figure(accuracy, label=label, unit=unit, title=title)
    buf = io.StringIO()
    with style():
        fig.savefig(buf, format="svg", metadata=SVG_METADATA, bbox_inches="tight", pad_inches=0.05)
    return write_file(out, buf.getvalue())


def runs_per_cell(grids: Sequence[Mapping[Cell, float]]) -> dict[Cell, list[float]]:
    """Several runs' grids -> one value list per cell (the form the drawing takes for seeds);
    non-finite values are left out."""
    out: dict[Cell, list[float]] = {}
    for grid in grids:
        for cell, value in grid.items():
            if math.isfinite(float(value)):
                out.setdefault(cell, []).append(float(value))
    return out
