"""The "Inside the memories" section: the stored inspections (``memzoo inspect``) drawn.

Runs are reduced to cells as everywhere in the report (:mod:`memzoo.report.cells`): the
learning rate picked on validation, its seeds averaged. Each inspection curve of a cell is
the mean over those seeds at each x, with a band of ± 1 standard deviation over seeds (with
one seed: ± the probes' own standard error). Cells of different probe layouts
(sequence length, pairs) get separate figures. Tables give what each layer wrote, averaged
by token role, and where the attention layers read at the query.
"""

from __future__ import annotations

from collections import defaultdict

from memzoo.report.cells import Cell, result_cells
from memzoo.report.data import ReportData, caption, html_table
from memzoo.report.plots import (
    accuracy_axis,
    color_map,
    figure_html,
    legend,
    line_with_band,
    mean_spread,
    subplots,
    title,
    varies,
    x_axis,
)

INSPECTION = "inspection"  # the metrics key memzoo.inspect stores (kept in step by a test)
CURVE_TITLES = {
    "forgetting": "Forgetting: recall vs tokens since written",
    "interference": "Interference: recall vs pairs written after",
    "capacity": "Capacity: recall vs pairs stored",
    "overwrite": "Overwrite: latest value after a re-binding",
}


def _inspected(cell: Cell) -> list[dict]:
    return [r.metrics[INSPECTION] for r in cell.runs if isinstance(r.metrics.get(INSPECTION), dict)]


def curve_points(inspections: list[dict], name: str) -> list[dict]:
    """``[{"x", "mean", "spread", "n_seeds"}]`` of curve ``name`` over ``inspections`` (seeds)."""
    by_x: dict[int, list[dict]] = defaultdict(list)
    for inspection in inspections:
        for point in inspection["curves"].get(name, {}).get("points", []):
            by_x[point["x"]].append(point)
    out = []
    for x, points in sorted(by_x.items()):
        mean, spread, n = mean_spread([p["accuracy"] for p in points])
        out.append({"x": x, "mean": mean, "spread": spread if n > 1 else points[0]["stderr"], "n_seeds": n})
    return out


def _layout_key(inspection: dict) -> tuple:
    layout = inspection["layout"]
    return (layout["seq_len"], layout["num_pairs"])


def _figure(cells: list[tuple[Cell, list[dict]]], layout: tuple, colors: dict) -> str | None:
    names = [n for n in CURVE_TITLES if any(curve_points(ins, n) for _, ins in cells)]
    names = [n for n in names if varies(p["x"] for _, ins in cells for p in curve_points(ins, n))]
    if not names:
        return None
    from matplotlib.ticker import MaxNLocator

    fig, axes = subplots(len(names), ncols=2)
    rows = []
    for ax, name in zip(axes, names):
        for cell, inspections in cells:
            points = curve_points(inspections, name)
            xs = [p["x"] for p in points]
            line_with_band(
                ax,
                xs,
                [p["mean"] for p in points],
                [p["spread"] for p in points],
                cell.label,
                colors[cell.label],
            )
            rows += [{"curve": name, "series": cell.label, "task": cell.task, **p} for p in points]
        x_axis(ax, [r["x"] for r in rows if r["curve"] == name], inspections[0]["curves"][name]["x_label"])
        if ax.get_xscale() == "linear":  # counts of tokens and pairs: whole-number ticks
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        accuracy_axis(ax, "recall (fraction of queries)")
        title(ax, CURVE_TITLES[name])
    legend(fig)
    seq_len, pairs = layout
    return figure_html(
        fig,
        f"recall curves of the inspected models, probes of {seq_len} tokens with {pairs} pairs",
        name=f"inside-{seq_len}-{pairs}",
        rows=rows,
    )


def _gate_rows(cells: list[tuple[Cell, list[dict]]]) -> list[list]:
    rows = []
    for cell, inspections in cells:
        gates = inspections[0]["layers"]["gates"]  # the first seed's layers: one model's view
        for layer, by_gate in gates.items():
            for gate, by_role in by_gate.items():
                rows.append(
                    [cell.label, layer, gate, *(by_role.get(r) for r in ("key", "value", "filler", "query"))]
                )
    return rows


def _attention_rows(cells: list[tuple[Cell, list[dict]]]) -> list[list]:
    rows = []
    for cell, inspections in cells:
        for layer, mass in inspections[0]["layers"]["attention"].items():
            rows.append(
                [
                    cell.label,
                    layer,
                    *(mass.get(k) for k in ("matching_key", "matching_value", "other_pairs", "elsewhere")),
                ]
            )
    return rows


def inside_memories(data: ReportData) -> str | None:
    """Figures of the inspection curves and tables of the layer views; None without inspections."""
    cells = [(c, ins) for c in result_cells(data.runs, data.run_labels) if (ins := _inspected(c))]
    if not cells:
        return None
    colors = color_map(data.labels())
    parts = [
        caption(
            "Probes in the task's own layout, fresh seed, one thing changed at a time: forgetting "
            "moves the query away from the last pair written; interference puts more pairs between "
            "a pair and its query at a fixed lag; capacity writes more pairs and queries them all; "
            "overwrite re-binds a key and scores the latest value. Mean over seeds at the learning "
            "rate picked on validation; band ± 1 std over seeds (one seed: ± the probes' standard error)."
        )
    ]
    by_layout: dict[tuple, list] = defaultdict(list)
    for cell, inspections in cells:
        by_layout[_layout_key(inspections[0])].append((cell, inspections))
    for layout, group in sorted(by_layout.items()):
        figure = _figure(group, layout, colors)
        parts.append(
            figure or caption(f"Probes of {layout[0]} tokens, {layout[1]} pairs: each curve has one point.")
        )
    gate_rows = _gate_rows(cells)
    if gate_rows:
        parts.append(
            caption(
                "What each memory wrote: its write gates averaged over heads and over tokens of each role (first seed)."
            )
        )
        parts.append(html_table(["model", "layer", "gate", "key", "value", "filler", "query"], gate_rows))
    attention_rows = _attention_rows(cells)
    if attention_rows:
        parts.append(
            caption(
                "Where attention reads at the query position: probability mass (mean over heads and probes)."
            )
        )
        parts.append(
            html_table(
                ["model", "layer", "queried key", "its value", "other pairs", "elsewhere"], attention_rows
            )
        )
    no_view = sorted({f"{c.label} {layer}" for c, ins in cells for layer in ins[0]["layers"]["no_view"]})
    if no_view:
        parts.append(caption("No gate or attention view: " + ", ".join(no_view) + "."))
    return "\n".join(parts)
