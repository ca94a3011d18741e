"""The "Long-term memory at equal budgets" section: recall far beyond the window against the
bytes a memory carries across a segment boundary (``state_bytes_at_boundary``), one line per
memory through its sizes, one panel per distractor variant — the long-term counterpart of the
recall-vs-state frontier. Beside it, the overwrite probe (the same recall with keys rebound
halfway to the queries, ``rebind``; the latest value the answer): each memory's accuracy, on
rebound and on kept keys, its stale-answer rate (rebound keys answered with the first value),
its recall at the far distance and its bytes at the boundary.

Runs are reduced to cells (:mod:`memzoo.report.cells`: the learning rate picked on validation,
mean ± std over seeds). A panel is drawn only where some memory has at least two budgets.
"""

from __future__ import annotations

from collections import defaultdict

from memzoo.report.cells import Cell, result_cells
from memzoo.report.data import ReportData, caption, group, html_table, number, seed_order, task_setting
from memzoo.report.plots import (
    SPREAD_NOTE,
    accuracy_axis,
    color_map,
    figure_html,
    legend,
    mean_spread,
    points_with_errorbars,
    seed_summary,
    subplots,
    title,
    varies,
    x_axis,
)
from memzoo.report.variants import memory_name

BUDGET = "state_bytes_at_boundary"


def _far_distance(cells: list[Cell]) -> str | None:
    """The longest test distance every cell was scored at (as the key string), or None."""
    shared = None
    for cell in cells:
        for run in cell.runs:
            keys = set((run.metrics.get("accuracy_by_distance") or {}).keys())
            shared = keys if shared is None else shared & keys
    return max(shared, key=int) if shared else None


def _budget_at(run, distance: str) -> float | None:
    """The bytes ``run`` carries across the last boundary before a query at ``distance``
    (stored per distance since a growing cache carries more further on), else the test set's."""
    by_distance = run.metrics.get(f"{BUDGET}_by_distance") or {}
    return number(by_distance.get(distance, run.metrics.get(BUDGET)))


def _point(cell: Cell, distance: str) -> dict | None:
    runs = sorted(cell.runs, key=seed_order)
    recalls = [number((r.metrics.get("accuracy_by_distance") or {}).get(distance)) for r in runs]
    budgets = [_budget_at(r, distance) for r in runs]
    if None in recalls or None in budgets:
        return None
    mean, spread, n = mean_spread(recalls)
    memory = memory_name(cell.runs[0])
    return {
        "memory": memory,
        "model": cell.label,
        "bytes": int(max(budgets)),
        "recall": mean,
        "std": spread,
        "n": n,
        "per_seed": recalls,
        "lr": cell.lr,
        "lrs": len(cell.lrs),
        "lrs_tried": cell.lrs,
        "validation": cell.validation,
    }


def _one_per_model(points: list[dict]) -> list[dict]:
    """Of points of one model at one budget (one setting run by two suites), the one with the
    most learning rates tried, then the best validation: a swept cell over a single-rate one."""

    def rank(p: dict) -> tuple[int, float]:
        return p["lrs"], p["validation"] if p["validation"] is not None else p["recall"]

    same = group(((p["model"], p["bytes"]), p) for p in points)
    return [max(candidates, key=rank) for candidates in same.values()]


def _panel_key(cell: Cell) -> tuple[str, str]:
    """``(distractor variant, longest training distance)``: memories are compared only where
    they trained on the same distances (RMT trained on to 512 is not beside memories trained
    to 256)."""
    task = cell.config.get("task", {}) if isinstance(cell.config, dict) else {}
    trained_to = task_setting(cell.runs[0], "max_distance")
    return str(task.get("distractors", "?")), "?" if trained_to is None else f"{trained_to:g}"


def _is_ablation(cell: Cell) -> bool:
    """A control whose memory carries nothing (reset every segment, RMT without memory tokens,
    persistent without slots): not a memory at a budget, so not a point of the frontier."""
    model = cell.config.get("model", {}) if isinstance(cell.config, dict) else {}
    rmt = model.get("rmt") or {}
    options = model.get("layer_options") or {}
    return bool(
        model.get("reset_long_term_memory")
        or (isinstance(rmt, dict) and rmt.get("num_memory") == 0)
        or any(isinstance(o, dict) and o.get("num_slots") == 0 for o in options.values())
    )


def _panels(data: ReportData) -> dict[tuple[str, str], tuple[str, list[dict]]]:
    """``{(variant, training distance): (distance, points)}`` of the cross-segment recall cells
    that store a budget, ablations left out."""
    cells = [
        c
        for c in result_cells(data.runs, data.run_labels)
        if c.task == "cross_segment_recall"
        and all(BUDGET in r.metrics for r in c.runs)
        and not _is_ablation(c)
        and not task_setting(c.runs[0], "rebind")
    ]
    by_panel: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in cells:
        by_panel[_panel_key(cell)].append(cell)
    panels = {}
    for key, panel_cells in sorted(by_panel.items()):
        distance = _far_distance(panel_cells)
        points = _one_per_model([p for c in panel_cells if distance and (p := _point(c, distance))])
        by_memory = defaultdict(set)
        for p in points:
            by_memory[p["memory"]].add(p["bytes"])
        if any(varies(b) for b in by_memory.values()):
            panels[key] = (distance, points)
    return panels


def overwrite_probe(data: ReportData) -> str | None:
    """The overwrite probe's table (one row per memory, best accuracy first): recall with keys
    rebound halfway to the queries; None without such runs."""
    cells = [
        c
        for c in result_cells(data.runs, data.run_labels)
        if c.task == "cross_segment_recall"
        and task_setting(c.runs[0], "rebind")
        and all(BUDGET in r.metrics for r in c.runs)
    ]
    if not cells:
        return None
    distance = _far_distance(cells)

    def summary(cell: Cell, metric: str) -> str:
        return seed_summary([number(r.metrics.get(metric)) for r in cell.runs])

    rows = [
        [
            c.label,
            max(int(_budget_at(r, distance) or 0) for r in c.runs) if distance else "–",
            c.summary(),
            summary(c, "rebound_accuracy"),
            summary(c, "kept_accuracy"),
            summary(c, "stale_answer_rate"),
            seed_summary(
                [number((r.metrics.get("accuracy_by_distance") or {}).get(distance)) for r in c.runs]
            ),
        ]
        for c in sorted(cells, key=lambda c: (-c.mean, c.label))
    ]
    header = ["model", "bytes at boundary", "accuracy (latest values)", "rebound keys: new value"]
    header += ["kept keys", "stale-answer rate", f"accuracy at distance {distance}"]
    return (
        "<h3>Overwrite probe</h3>"
        + caption(
            "Cross-segment recall with keys rebound: some keys are written again, with a new value, "
            "halfway between the pairs and the queries, and each query's answer is its key's latest "
            "value (lr picked on validation, mean ± std over seeds, on the test set's distances). "
            "Rebound keys: the fraction answered with the new value; kept keys: the other queries; "
            "stale-answer rate: the fraction of rebound keys answered with the first value (near 1: "
            "the first write stuck; near 0: the last write wins; neither: the key was lost)."
        )
        + html_table(header, rows)
    )


def pareto_front(points: list[dict]) -> list[dict]:
    """The points no other point beats: none recalls more with as few or fewer bytes. In
    order of bytes; ties in bytes keep the better recall.

    >>> [p["model"] for p in pareto_front([
    ...     {"model": "a", "bytes": 10, "recall": 0.5}, {"model": "b", "bytes": 20, "recall": 0.4},
    ...     {"model": "c", "bytes": 30, "recall": 0.9}, {"model": "d", "bytes": 10, "recall": 0.6}])]
    ['d', 'c']
    """
    front, best = [], None
    for p in sorted(points, key=lambda p: (p["bytes"], -p["recall"])):
        if best is None or p["recall"] > best:
            front.append(p)
            best = p["recall"]
    return front


def _front_sentence(variant: str, points: list[dict]) -> str:
    parts = [f"{p['model']} ({p['bytes'] / 1024:,.1f} KiB, {p['recall']:.3f})" for p in pareto_front(points)]
    return f"{variant}: " + "; ".join(parts)


def _scalars(point: dict) -> dict:
    """The point's single-valued fields (a CSV row); the per-seed and tried-rate lists are in
    the table."""
    return {k: v for k, v in point.items() if not isinstance(v, list)}


def _table_row(variant: str, point: dict) -> list:
    """A frontier point as a table row: recall mean ± std, each seed's recall (in seed order)
    and the learning rate picked on validation among those tried."""
    seeds = " / ".join(f"{r:.3f}" for r in point["per_seed"])
    tried = ", ".join(f"{lr:g}" for lr in point["lrs_tried"])
    picked = "–" if point["lr"] is None else f"{point['lr']:g} ({tried})"
    recall = f"{point['recall']:.3f} ± {point['std']:.3f} (n={point['n']})"
    return [variant, point["model"], point["bytes"], recall, seeds, picked]


def equal_budgets(data: ReportData) -> str | None:
    """The frontier figure and its table, then the overwrite probe; None when there is
    neither a memory run at two budgets nor an overwrite run."""
    panels = _panels(data)
    probe = overwrite_probe(data)
    if not panels:
        return probe
    fig, axes = subplots(len(panels), ncols=2, width=4.4, height=3.2)
    colors = color_map(sorted({p["memory"] for _, points in panels.values() for p in points}))
    several_trainings = len({trained for _, trained in panels}) > 1
    names = {
        key: f"{key[0]}, trained to distance {key[1]}" if several_trainings else key[0] for key in panels
    }
    rows, table = [], []
    for ax, (key, (distance, points)) in zip(axes, panels.items()):
        variant = names[key]
        for memory in sorted({p["memory"] for p in points}):
            mine = sorted((p for p in points if p["memory"] == memory), key=lambda p: p["bytes"])
            xs = [p["bytes"] / 1024 for p in mine]
            points_with_errorbars(
                ax, xs, [p["recall"] for p in mine], [p["std"] for p in mine], memory, colors[memory]
            )
            rows += [{"distractors": variant, "distance_tokens": distance, **_scalars(p)} for p in mine]
            table += [_table_row(variant, p) for p in mine]
        x_axis(ax, [p["bytes"] / 1024 for p in points], "bytes across a segment boundary (KiB per sequence)")
        accuracy_axis(ax, f"recall at distance {distance} (fraction)")
        title(ax, f"distractors: {variant}")
    legend(fig)
    figure = figure_html(
        fig, "recall far beyond the window against the bytes carried", name="equal-budgets", rows=rows
    )
    return "\n".join(
        [
            caption(
                "Each memory at several sizes: recall at the longest test distance against what crosses "
                "a segment boundary (a better mechanism is higher at the same bytes). 'separate' "
                "distractors can be skipped by content; 'shared' ones interfere. Ablations (memory "
                f"reset every segment, no memory tokens or slots) carry nothing and are left out. {SPREAD_NOTE}."
            ),
            figure,
            caption(
                "Best per byte — the points no other point beats (none recalls more with as few or "
                "fewer bytes across the boundary), fewest bytes first: "
                + " | ".join(_front_sentence(names[k], points) for k, (_, points) in panels.items())
            ),
            html_table(
                ["distractors", "model", "bytes at boundary", "recall", "per seed", "lr picked (tried)"],
                table,
            ),
            probe or "",
        ]
    )
