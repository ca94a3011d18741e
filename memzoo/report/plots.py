"""Figures for the report: matplotlib (the ``plot`` extra) with the Agg canvas, PNG inline.

Figures are built with ``matplotlib.figure.Figure`` and an explicit Agg canvas, never
``pyplot``: no global backend switch in the caller's process, no figure registry to leak.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from typing import Any

from memzoo.errors import MemzooError
from memzoo.report.data import esc

PLOT_DPI = 100


def require_matplotlib() -> None:
    """Raise a MemzooError naming the extra to install when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError as err:
        raise MemzooError(
            "the report draws its figures with matplotlib, which is not installed: pip install memzoo[plot]"
        ) from err


def subplots(n: int, *, ncols: int = 3, width: float = 4.2, height: float = 3.2) -> tuple:
    """A figure with ``n`` panels on a grid of at most ``ncols`` columns.

    Returns ``(figure, axes)``; ``axes`` holds exactly ``n`` axes (spare cells removed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in grid[n:]:
        fig.delaxes(ax)
    return fig, list(grid[:n])


def figure_html(fig: Any, alt: str) -> str:
    """The figure as an ``<img>`` with an inline base64 PNG (``alt`` is escaped)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PLOT_DPI)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{esc(alt)}">'


def color_map(labels: Sequence[str]) -> dict[str, Any]:
    """A fixed colour for each label, so one layer has one colour in every figure."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def use_log_x(xs: Sequence[float]) -> bool:
    """Log x axis when every x is positive and they span at least a factor of 4."""
    return bool(xs) and min(xs) > 0 and max(xs) / min(xs) >= 4


def log2_x_axis(ax: Any, xs: Sequence[float]) -> None:
    """A base-2 log x axis labelled with the values themselves (64, 128, not 2^6)."""
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.set_xscale("log", base=2)
    ticks = sorted(set(xs))
    if len(ticks) <= 12:
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.xaxis.set_major_formatter(ScalarFormatter())


def legend(ax: Any, **kwargs: Any) -> None:
    """A legend with each label once (several runs share a layer label)."""
    handles, labels = ax.get_legend_handles_labels()
    seen: dict[str, Any] = {}
    for handle, label in zip(handles, labels):
        seen.setdefault(label, handle)
    if seen:
        names = sorted(seen)
        ax.legend([seen[n] for n in names], names, fontsize="small", **kwargs)
