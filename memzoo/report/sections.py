"""The core report sections: every run, accuracy by task, against length and against state
size. Each function is ``(ReportData) -> html fragment | None``.

Results are shown per *cell* (:mod:`memzoo.report.cells`): the runs of one setting that
differ only in learning rate and seed, reduced to the learning rate picked on validation
accuracy, with the mean test accuracy over its seeds, its spread and the number of seeds.
Where several cells fall in one table entry or plot point (e.g. widths of one layer), the one
with the best validation accuracy is shown — never the best test accuracy. Figures draw the
mean with ± one standard deviation over seeds, and a setting is an axis only where the
plotted runs hold at least two values of it (one value is said in the caption instead).
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from memzoo.report.cells import Cell, result_cells
from memzoo.report.data import (
    ReportData,
    accuracy,
    caption,
    esc,
    group,
    html_table,
    setting_label,
    task_setting,
)
from memzoo.report.plots import (
    AXIS,
    SPREAD_NOTE,
    accuracy_axis,
    bars,
    color_map,
    figure_html,
    legend,
    line_with_band,
    panel_titles,
    points_with_errorbars,
    subplots,
    title,
    varies,
    x_axis,
)

ERROR_CHARS = 300  # an error message in the runs table is cut to this many characters
# Task settings plotted on the x axis of "accuracy vs length": (key, words, unit).
LENGTH_SETTINGS = (
    ("seq_len", "sequence length", "tokens"),
    ("num_kv_pairs", "number of key-value pairs", "pairs"),
    ("distance", "distance between a pair and its query", "tokens"),
)


def runs_table(data: ReportData) -> str:
    """Every run, whatever its status; a failed run shows its (escaped) error."""
    if not data.runs:
        return caption("The results store holds no runs yet: run a benchmark first.")
    rows = []
    for r in data.runs:
        status = esc(r.status)
        if r.error:
            text = r.error if len(r.error) <= ERROR_CHARS else r.error[:ERROR_CHARS] + "…"
            status += f'<br><small class="error">{esc(text)}</small>'
        config = json.dumps(r.config, indent=1, sort_keys=True, default=str)
        config = f"<details><summary>{esc(r.config_hash)}</summary><pre>{esc(config)}</pre></details>"
        rows.append(
            [
                r.run_id,
                r.suite,
                r.task,
                data.label(r),
                accuracy(r),
                r.state_bytes,
                r.params,
                r.wall_seconds,
                status,
                config,
            ]
        )
    header = [
        "run id",
        "suite",
        "task",
        "layers",
        "accuracy",
        "state bytes",
        "params",
        "wall seconds",
        "status",
        "config",
    ]
    counts = group((r.status, 1) for r in data.runs)
    summary = ", ".join(f"{len(v)} {k}" for k, v in sorted(counts.items()))
    return caption(f"{len(data.runs)} runs: {summary}.") + html_table(header, rows, raw_columns=(8, 9))


def task_label(cell: Cell) -> str:
    """The task with its parameters: ``mqar (num_kv_pairs=4, seq_len=64, vocab_size=256)``."""
    return setting_label(cell.runs[0])


def by_validation(cells: list[Cell]) -> Cell:
    """The cell with the best validation (or, without one, picked) score."""
    return max(cells, key=lambda c: c.validation if c.validation is not None else c.mean)


def cell_stats(cell: Cell) -> dict[str, Any]:
    """A cell's plotted numbers, for a figure's CSV: mean, spread and n over seeds, the lr."""
    return {
        "mean_test_accuracy": cell.mean,
        "std_over_seeds": cell.std if len(cell.test) > 1 else None,
        "n_seeds": len(cell.test),
        "lr": cell.lr,
    }


def accuracy_by_task(data: ReportData) -> str | None:
    """Pivot table (task x layer combination) of test accuracy, mean ± std over seeds at the
    learning rate picked on validation, and a bar chart of the means with their spread."""
    all_cells = result_cells(data.runs, data.run_labels)
    if not all_cells:
        return None
    grouped = group(((task_label(c), c.label), c) for c in all_cells)
    cells = {key: by_validation(entries) for key, entries in grouped.items()}
    tasks = sorted({task for task, _ in cells})
    labels = sorted({label for _, label in cells})
    rows = []
    for task in tasks:
        row = [task]
        for label in labels:
            cell = cells.get((task, label))
            width = cell.config.get("model", {}).get("d_model") if cell else None
            row.append(f"{cell.summary()}" + (f", d={width}" if width else "") if cell else "–")
        rows.append(row)
    return (
        caption(
            "Test accuracy per task and layer combination: mean ± standard deviation over seeds "
            "(n) at the learning rate picked on validation accuracy; where a layer ran at several "
            "widths, the width with the best validation accuracy (d)."
        )
        + html_table(["task", *labels], rows)
        + _accuracy_bars(cells, tasks, labels, color_map(data.labels()))
    )


def _accuracy_bars(cells: dict[tuple[str, str], Cell], tasks: list[str], labels: list[str], colors) -> str:
    """Horizontal bars of the mean test accuracy with ± std error bars: one task, a bar per
    layer combination named on the axis; several tasks, a group of bars per task and a legend."""
    if len(tasks) == 1:
        present = [label for label in labels if (tasks[0], label) in cells]
        fig, (ax,) = subplots(1, width=6.0, height=0.9 + 0.3 * len(present))
        for i, label in enumerate(present):
            cell = cells[(tasks[0], label)]
            bars(ax, [i], [cell.mean], [cell.std], label=None, color=colors[label])
        ax.set_yticks(range(len(present)), present)
        title(ax, tasks[0])
    else:
        present = {t: [label for label in labels if (t, label) in cells] for t in tasks}
        most = max(map(len, present.values()))
        fig, (ax,) = subplots(1, width=6.0, height=0.9 + 0.2 * len(tasks) * most)
        height = 0.8 / most
        for i, task in enumerate(tasks):  # a task's bars side by side, centred on its tick
            for k, label in enumerate(present[task]):
                cell, position = cells[(task, label)], i + (k - (len(present[task]) - 1) / 2) * height
                bars(ax, [position], [cell.mean], [cell.std], label=label, color=colors[label], height=height)
        ax.set_yticks(range(len(tasks)), [textwrap.fill(t, 32) for t in tasks])
        legend(fig)
    ax.invert_yaxis()  # the first task (or layer) on top
    ax.set_xlim(0, 1.05)
    ax.set_xlabel(AXIS["accuracy"])
    ax.grid(axis="y", visible=False)
    rows = [{"task": t, "layers": label, **cell_stats(c)} for (t, label), c in sorted(cells.items())]
    return figure_html(
        fig,
        "test accuracy by task and layer combination",
        name="accuracy-by-task",
        rows=rows,
        caption=f"Mean test accuracy over seeds; {SPREAD_NOTE}.",
    )


def accuracy_vs_length(data: ReportData) -> str | None:
    """Accuracy against ``seq_len``, ``num_kv_pairs`` and ``distance``: a figure per setting,
    a panel per task in which the runs hold two or more of its values, a line per layer
    combination. A task with one value gets a sentence; None when no run records any."""
    cells = result_cells(data.runs, data.run_labels)
    colors = color_map(data.labels())
    figures, single = [], []
    for key, words, unit in LENGTH_SETTINGS:
        points = [(c, task_setting(c.runs[0], key)) for c in cells]
        by_task = group((c.task, (c, x)) for c, x in points if x is not None)
        plotted = {task: entries for task, entries in by_task.items() if varies(x for _, x in entries)}
        single += [
            f"{task}: {key} = {entries[0][1]:g} {unit}"
            for task, entries in sorted(by_task.items())
            if task not in plotted
        ]
        if plotted:
            figures.append(_length_figure(key, words, unit, plotted, colors))
    if not figures and not single:
        return None
    text = (
        "Mean test accuracy over seeds at each setting (learning rate picked on validation), "
        "one line per layer combination."
    )
    if single:
        text += " Not plotted, one value among the runs: " + "; ".join(single) + "."
    return caption(text) + "".join(figures)


def _length_figure(key: str, words: str, unit: str, by_task: dict, colors) -> str:
    fig, axes = subplots(len(by_task))
    rows = []
    titles = panel_titles(by_task)
    for ax, (task, entries) in zip(axes, sorted(by_task.items())):
        best = {k: by_validation(cs) for k, cs in group(((c.label, x), c) for c, x in entries).items()}
        for label in sorted({lb for lb, _ in best}):
            xs = sorted(x for lb, x in best if lb == label)
            chosen = [best[(label, x)] for x in xs]
            line_with_band(ax, xs, [c.mean for c in chosen], [c.std for c in chosen], label, colors[label])
            rows += [
                {"task": task, "layers": label, f"{key} ({unit})": x, **cell_stats(c)}
                for x, c in zip(xs, chosen)
            ]
        x_axis(ax, [x for _, x in best], AXIS.get(key, f"{words} ({unit})"))
        accuracy_axis(ax)
        title(ax, titles[task])
    legend(fig)
    return figure_html(
        fig,
        f"test accuracy against {words}",
        name=f"accuracy-vs-{key}",
        rows=rows,
        caption=f"Test accuracy against {words} ({unit}): mean over seeds; {SPREAD_NOTE}.",
    )


RECALL_TARGET = 0.99  # the accuracy at which Zoology counts a setting as solved
KIB = 1024


def recall_vs_state(data: ReportData) -> str | None:
    """Zoology's headline figure: accuracy against memory-state size (log x), a line per
    layer combination through its mean accuracy (± std over seeds) at each state size, a
    panel per task whose runs hold two or more state sizes, the 0.99 target dashed; then a
    table of the smallest state at which each layer reaches it."""
    points = [c for c in result_cells(data.runs, data.run_labels) if (c.state_bytes or 0) > 0]
    if not points:
        return None
    by_task = group((task_label(c), c) for c in points)
    rows = []
    for task, cells in sorted(by_task.items()):
        for label, group_cells in sorted(group((c.label, c) for c in cells).items()):
            frontier = _by_state(group_cells)  # [(bytes, cell)], bytes ascending
            reached = [b for b, c in frontier if c.mean >= RECALL_TARGET]
            best_bytes, best = max(frontier, key=lambda point: point[1].mean)
            rows.append(
                (
                    task,
                    label,
                    f"{reached[0]:,}" if reached else "not reached",
                    f"{best.mean:.3f}",
                    f"{best_bytes:,}",
                    sum(len(c.runs) for c in group_cells),
                )
            )
    header = (
        "task",
        "layers",
        f"smallest state reaching {RECALL_TARGET}",
        "best mean accuracy",
        "at state bytes",
        "runs (picked lr)",
    )
    plotted = {t: cs for t, cs in by_task.items() if varies(c.state_bytes for c in cs)}
    single = [f"{t}: {cs[0].state_bytes:,} bytes" for t, cs in sorted(by_task.items()) if t not in plotted]
    text = (
        "Mean test accuracy over seeds (learning rate picked on validation) against the memory "
        "state a sequence carries: the better memory recalls more with less state (up and to "
        f"the left); dashed: {RECALL_TARGET}."
    )
    if single:
        text += " Not plotted, one state size among the runs: " + "; ".join(single) + "."
    figure = _state_figure(plotted, color_map(data.labels())) if plotted else ""
    return caption(text) + figure + html_table(header, rows)


def _state_figure(by_task: dict[str, list[Cell]], colors) -> str:
    fig, axes = subplots(len(by_task))
    rows = []
    titles = panel_titles(by_task)
    for ax, (task, cells) in zip(axes, sorted(by_task.items())):
        for label, group_cells in sorted(group((c.label, c) for c in cells).items()):
            frontier = _by_state(group_cells)
            kib = [b / KIB for b, _ in frontier]
            means, stds = [c.mean for _, c in frontier], [c.std for _, c in frontier]
            points_with_errorbars(ax, kib, means, stds, label, colors[label])
            rows += [
                {"task": task, "layers": label, "state (KiB per sequence)": b / KIB, "state (bytes)": b}
                | cell_stats(c)
                for b, c in frontier
            ]
        ax.axhline(RECALL_TARGET, color="grey", linestyle="--", linewidth=0.8)
        x_axis(ax, [c.state_bytes / KIB for c in cells], AXIS["state"])
        accuracy_axis(ax)
        title(ax, titles[task])
    legend(fig)
    return figure_html(
        fig,
        "test accuracy against memory-state size",
        name="recall-vs-state",
        rows=rows,
        caption=f"Test accuracy against memory state (KiB per sequence); {SPREAD_NOTE}.",
    )


def _by_state(cells: list[Cell]) -> list[tuple[int, Cell]]:
    """``[(state bytes, cell)]`` by ascending bytes; of several cells with one state size,
    the one with the best validation accuracy."""
    by_bytes = group((c.state_bytes, c) for c in cells)
    return sorted(((b, by_validation(cs)) for b, cs in by_bytes.items()), key=lambda p: p[0])
