"""Figures for the report: matplotlib (the ``plot`` extra), one style, inline SVG with its data.

Figures are built with ``matplotlib.figure.Figure`` and an explicit Agg canvas, never
``pyplot``: no global backend switch in the caller's process, no figure registry to leak.
A section draws a figure in five steps::

    fig, axes = subplots(len(panels))                          # the report's style, a grid
    line_with_band(ax, xs, means, stds, label, colors[label])  # mean ± spread over seeds
    x_axis(ax, xs, AXIS["seq_len"]); accuracy_axis(ax); title(ax, task)  # units, log2 ticks
    legend(fig)                                                # one legend, off the data
    html = figure_html(fig, "accuracy against length", name="accuracy-vs-seq_len", rows=rows)

(``points_with_errorbars`` and ``bars`` draw means with error bars; ``log_y_axis`` a rate.)

``rows`` are the plotted points, one dict per point (series, x, mean, spread, n, units in
the column names); :func:`figure_html` writes the figure as inline SVG in a ``<figure>`` with
a ``<figcaption>`` and those rows as a downloadable CSV beside it (:mod:`memzoo.report.svg`).
Never plot over a dimension with one value (:func:`varies`): say the value in words instead.
"""

from __future__ import annotations

import io
import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from memzoo.errors import MemzooError
from memzoo.report.data import esc, group
from memzoo.report.svg import SVG_METADATA, csv_link, inline_svg, slug

# The one style of every figure: 11 pt text, no top/right spines, a light grid under the data.
STYLE: dict[str, Any] = {
    "font.size": 11,
    "axes.titlesize": "medium",
    "axes.labelsize": "medium",
    "xtick.labelsize": "small",
    "ytick.labelsize": "small",
    "legend.fontsize": "small",
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e2e2e2",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 4.5,
    "errorbar.capsize": 2.5,
    "figure.facecolor": "white",
    "svg.fonttype": "none",  # text stays text: crisp, selectable, editable
    "svg.hashsalt": "memzoo",  # stable ids: the same store gives the same file
}
BAND_ALPHA = 0.18
# Axis names with their units.
AXIS = {
    "accuracy": "test accuracy (fraction)",
    "validation": "validation accuracy (fraction)",
    "seq_len": "sequence length (tokens)",
    "num_kv_pairs": "key-value pairs (count)",
    "distance": "distance (tokens)",
    "state": "memory state (KiB per sequence)",
    "steps": "optimiser steps",
    "epoch": "epoch",
    "throughput": "throughput (tokens/s)",
}
SPREAD_NOTE = "error bars and bands: ± 1 standard deviation over seeds where n ≥ 2 (n per point in the CSV)"
RIGHT_LEGEND_CHARS, RIGHT_LEGEND_ENTRIES = 30, 14  # a longer or larger legend goes below
LEGEND_ROW_EMS = 1.6  # height of a legend row in font sizes (matplotlib's label spacing + text)


def require_matplotlib() -> None:
    """Raise a MemzooError naming the extra to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError as err:
        raise MemzooError(
            "the report draws its figures with matplotlib, which is not installed: pip install memzoo[plot]"
        ) from err


def style() -> Any:
    """The report's matplotlib style as a context (``with style(): ...``): :data:`STYLE`."""
    import matplotlib

    return matplotlib.rc_context(STYLE)


def subplots(n: int, *, ncols: int = 3, width: float = 3.6, height: float = 2.8) -> tuple:
    """A figure in the report's style with ``n`` panels on a grid of at most ``ncols`` columns
    (constrained layout: labels and outside legends never clipped).

    Returns ``(figure, axes)``; ``axes`` holds exactly ``n`` axes (spare cells removed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    with style():
        fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in grid[n:]:
        fig.delaxes(ax)
    return fig, list(grid[:n])


def figure_html(fig: Any, alt: str, *, name: str, rows: list[dict], caption: str | None = None) -> str:
    """The figure as inline SVG in a ``<figure>``, its ``<figcaption>`` (``caption``, else
    ``alt``; escaped) ending in a link that downloads ``rows`` as ``NAME.csv``.

    ``name`` must be unique in the report: it makes the file name, the figure's anchor
    (``fig-NAME``) and the prefix of every id inside the SVG."""
    import matplotlib

    key = slug(name)
    buf = io.StringIO()
    with style(), matplotlib.rc_context({"svg.hashsalt": key}):
        # tight: a label longer than its panel widens the image instead of being cut off
        fig.savefig(buf, format="svg", metadata=SVG_METADATA, bbox_inches="tight", pad_inches=0.05)
    svg = inline_svg(buf.getvalue(), prefix=f"{key}-", alt=alt)
    text = esc(alt if caption is None else caption)
    return (
        f'<figure class="plot" id="fig-{key}">{svg}\n'
        f"<figcaption>{text} {csv_link(rows, f'{key}.csv')}</figcaption></figure>"
    )


def color_map(labels: Sequence[str]) -> dict[str, Any]:
    """A fixed colour for each label, so one layer has one colour in every figure."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def varies(values: Iterable[Any]) -> bool:
    """Whether ``values`` hold at least two distinct values: a dimension worth an axis."""
    return len(set(values)) >= 2


def mean_spread(values: Sequence[float]) -> tuple[float, float, int]:
    """``(mean, sample standard deviation (0 for one value), n)`` of ``values``."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.fmean(values), spread, len(values)


def seed_summary(values: Sequence[float | None]) -> str:
    """``0.812 ± 0.042 (n=2)`` of the numbers among ``values`` (None left out); ``–`` without
    any, and the value alone for one."""
    present = [v for v in values if v is not None]
    if not present:
        return "–"
    mean, spread, n = mean_spread(present)
    return f"{mean:.3f} ± {spread:.3f} (n={n})" if n > 1 else f"{mean:.3f}"


def use_log_x(xs: Sequence[float]) -> bool:
    """Log x axis when every x is positive and they span at least a factor of 4."""
    return bool(xs) and min(xs) > 0 and max(xs) / min(xs) >= 4


def log2_x_axis(ax: Any, xs: Sequence[float]) -> None:
    """A base-2 log x axis labelled with the values themselves (64, 128, not 2^6): ticks at
    the values when they are few and spaced at least 1.5x apart (lengths, pair counts), else
    at powers of two (state sizes of every layer)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log", base=2)
    ticks = sorted(set(xs))
    if len(ticks) <= 12 and all(b / a >= 1.5 for a, b in zip(ticks, ticks[1:])):
        ax.set_xticks(ticks, [compact(t) for t in ticks])
    else:
        ax.xaxis.set_major_locator(LogLocator(base=2))
        ax.xaxis.set_major_formatter(FuncFormatter(compact))
    ax.xaxis.set_minor_formatter(NullFormatter())


def x_axis(ax: Any, xs: Sequence[float], label: str) -> None:
    """Label the x axis; log base 2 (ticks at the values) when ``xs`` span a factor of 4."""
    if use_log_x(xs):
        log2_x_axis(ax, xs)
    ax.set_xlabel(label)


def compact(value: float, _position: Any = None) -> str:
    """A tick label: ``1024``, ``0.25``; from 10,000 on ``20k`` / ``1.5M`` when that is exact
    to one decimal, else with separators (``16,384``)."""
    if abs(value) < 1e4:
        return f"{value:g}"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale and value / scale == round(value / scale, 1):
            return f"{value / scale:g}{suffix}"
    return f"{value:,.0f}"


def log_y_axis(ax: Any, label: str) -> None:
    """A log y axis with ticks at 1, 2 and 5 times each power of ten, labelled ``2k``, ``5k``,
    never ``2×10³`` (readable and text, not mathtext, in the SVG)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(compact))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel(label)


def title(ax: Any, text: str) -> None:
    """The panel's title in the report's style, wrapped to the panel's width."""
    import textwrap

    chars = max(20, int(ax.get_position().width * ax.figure.get_figwidth() * 72 / 6.5))
    with style():
        ax.set_title(textwrap.fill(text, chars))


def panel_titles(settings: Iterable[str]) -> dict[str, str]:
    """``{setting: title}`` for panels named by task settings (``name (k=v, k=v)``, as
    :func:`memzoo.report.data.setting_label` writes them): a task drawn in several panels is
    titled by the parameters in which its panels differ; a task in one panel keeps them all
    (the full settings stay in the figure's CSV and the tables).

    >>> titles = panel_titles(["recall (d=separate, n=4)", "recall (d=shared, n=4)", "copy (n=4)"])
    >>> titles["recall (d=separate, n=4)"], titles["copy (n=4)"]
    ('recall (d=separate)', 'copy (n=4)')
    """
    parsed = {text: _name_and_params(text) for text in settings}
    by_name = group((name, params) for name, params in parsed.values())
    titles = {}
    for text, (name, params) in parsed.items():
        panels = by_name[name]
        if len(panels) < 2:
            titles[text] = text
            continue
        differing = [p for p in params if not all(p in other for other in panels)]
        titles[text] = f"{name} ({', '.join(differing)})" if differing else text
    return titles


def _name_and_params(setting: str) -> tuple[str, list[str]]:
    """``"mqar (a=1, b=x, y)"`` -> ``("mqar", ["a=1", "b=x, y"])``: split before each ``key=``."""
    name, _, rest = setting.partition(" (")
    if not rest.endswith(")"):
        return setting, []
    return name, re.split(r", (?=[A-Za-z_][\w.]*=)", rest[:-1])


def accuracy_axis(ax: Any, label: str = AXIS["accuracy"]) -> None:
    """A y axis of accuracy: 0 to 1, labelled with its unit."""
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(label)


def _spreads(spreads: Sequence[float | None]) -> list[float]:
    return [float(s) if s else 0.0 for s in spreads]


def line_with_band(
    ax: Any,
    xs: Sequence[float],
    means: Sequence[float],
    spreads: Sequence[float | None],
    label: str,
    color: Any,
    *,
    marker: str | None = "o",
) -> None:
    """A line through ``means`` with a shaded band of ± ``spreads`` (None or 0: no spread);
    a single point gets an error bar instead of a band."""
    points = sorted(zip(xs, means, _spreads(spreads)))
    px, py, ps = ([p[i] for p in points] for i in range(3))
    with style():
        ax.plot(px, py, marker=marker, color=color, label=label)
        if not any(ps):
            return
        if len(px) >= 2:
            lo = [m - s for m, s in zip(py, ps)]
            hi = [m + s for m, s in zip(py, ps)]
            ax.fill_between(px, lo, hi, color=color, alpha=BAND_ALPHA, linewidth=0)
        else:
            ax.errorbar(px, py, yerr=ps, fmt="none", ecolor=color)


def points_with_errorbars(
    ax: Any,
    xs: Sequence[float],
    means: Sequence[float],
    spreads: Sequence[float | None],
    label: str,
    color: Any,
    *,
    connect: bool = True,
) -> None:
    """Points at ``means`` with vertical error bars of ± ``spreads`` (None or 0: none),
    joined by a line when ``connect``."""
    points = sorted(zip(xs, means, _spreads(spreads)))
    px, py, ps = ([p[i] for p in points] for i in range(3))
    yerr = ps if any(ps) else None
    with style():
        ax.errorbar(px, py, yerr=yerr, fmt="o-" if connect else "o", color=color, ecolor=color, label=label)


def bars(
    ax: Any,
    positions: Sequence[float],
    means: Sequence[float],
    spreads: Sequence[float | None],
    *,
    label: str | None,
    color: Any,
    height: float = 0.8,
) -> None:
    """Horizontal bars at ``positions`` (y) of length ``means`` with error bars of
    ± ``spreads`` (None or 0: none)."""
    errors = _spreads(spreads)
    with style():
        ax.barh(
            list(positions),
            list(means),
            height=height,
            xerr=errors if any(errors) else None,
            color=color,
            label=label,
            error_kw={"ecolor": "#333333", "elinewidth": 1.0, "capsize": STYLE["errorbar.capsize"]},
        )


def _entries(axes: Sequence[Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if not label.startswith("_"):
                seen.setdefault(label, handle)
    return seen


def legend(target: Any, *, order: Mapping[str, int] | None = None) -> Any | None:
    """One legend with each label once, outside the data (returns it; None without labels).

    ``target`` a figure, or the only axes of one: a legend for the whole figure, right of the
    panels (widening the figure so they keep their size) or, when its labels are long or
    many, below them. ``target`` one axes of several: its own legend, right of it."""
    from matplotlib.axes import Axes
    from matplotlib.font_manager import FontProperties

    fig = target.figure if isinstance(target, Axes) else target
    one_axes = isinstance(target, Axes) and len(fig.axes) > 1
    seen = _entries([target] if one_axes else fig.axes)
    if not seen:
        return None
    names = sorted(seen, key=lambda n: ((order or {}).get(n, 0), n))
    handles = [seen[n] for n in names]
    with style():
        if one_axes:
            return target.legend(
                handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0
            )
        points = FontProperties(size=STYLE["legend.fontsize"]).get_size_in_points()
        entry_inches = (max(map(len, names)) * 0.6 * points + 36) / 72  # text + handle + gap
        if max(map(len, names)) <= RIGHT_LEGEND_CHARS and len(names) <= RIGHT_LEGEND_ENTRIES:
            fig.set_figwidth(fig.get_figwidth() + entry_inches)
            return fig.legend(handles, names, loc="outside right upper")
        # Below: as many columns as the figure's width holds (widened to hold one), and the
        # figure grows by the legend's rows, so constrained layout never squeezes the panels.
        fig.set_figwidth(max(fig.get_figwidth(), entry_inches + 0.2))
        ncols = max(1, min(len(names), int(fig.get_figwidth() // entry_inches)))
        rows = math.ceil(len(names) / ncols)
        fig.set_figheight(fig.get_figheight() + rows * LEGEND_ROW_EMS * points / 72)
        return fig.legend(handles, names, loc="outside lower center", ncols=ncols)
