"""The core report sections: every run, accuracy by task, against length, against state size,
and learning curves. Each function is ``(ReportData) -> html fragment | None``.

Results are shown per *cell* (:mod:`memzoo.report.cells`): the runs of one setting that
differ only in learning rate and seed, reduced to the learning rate picked on validation
accuracy, with the mean test accuracy over its seeds, its spread and the number of seeds.
Where several cells fall in one table entry or plot point (e.g. widths of one layer), the one
with the best validation accuracy is shown — never the best test accuracy.
"""

from __future__ import annotations

import json

from memzoo.report.cells import Cell, result_cells
from memzoo.report.data import (
    ReportData,
    accuracy,
    caption,
    esc,
    group,
    html_table,
    number,
    task_setting,
)
from memzoo.report.plots import (
    color_map,
    figure_html,
    legend,
    log2_x_axis,
    subplots,
    use_log_x,
)

ERROR_CHARS = 300  # an error message in the runs table is cut to this many characters
# Task settings plotted on the x axis of "accuracy vs length", with their axis names.
LENGTH_SETTINGS = (
    ("seq_len", "sequence length"),
    ("num_kv_pairs", "number of key-value pairs"),
    ("distance", "distance (tokens between a pair and its query)"),
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
    task = cell.config.get("task", {}) if isinstance(cell.config, dict) else {}
    params = ", ".join(
        f"{k}={task[k]}" for k in sorted(task) if k != "name" and not isinstance(task[k], dict | list)
    )
    return f"{cell.task} ({params})" if params else cell.task


def _by_validation(cells: list[Cell]) -> Cell:
    """The cell with the best validation (or, without one, picked) score."""
    return max(cells, key=lambda c: c.validation if c.validation is not None else c.mean)


def accuracy_by_task(data: ReportData) -> str | None:
    """Pivot table (task x layer combination) of test accuracy, mean ± std over seeds at the
    learning rate picked on validation, and a grouped bar chart of the means."""
    all_cells = result_cells(data.runs, data.run_labels)
    if not all_cells:
        return None
    grouped = group(((task_label(c), c.label), c) for c in all_cells)
    cells = {key: _by_validation(entries) for key, entries in grouped.items()}
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
    table = html_table(["task", *labels], rows)

    colors = color_map(data.labels())
    fig, (ax,) = subplots(1, width=max(5.0, 1.2 * len(tasks) * max(1, len(labels)) ** 0.5))
    width = 0.8 / len(labels)
    for j, label in enumerate(labels):
        xs = [i + (j - (len(labels) - 1) / 2) * width for i, t in enumerate(tasks) if (t, label) in cells]
        ys = [cells[(t, label)].mean for t in tasks if (t, label) in cells]
        ax.bar(xs, ys, width=width, label=label, color=colors[label])
    ax.set_xticks(range(len(tasks)), tasks, rotation=20 if len(tasks) > 4 else 0)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.05)
    legend(ax, loc="lower right")
    return (
        caption(
            "Test accuracy per task and layer combination: mean ± standard deviation over seeds "
            "(n) at the learning rate picked on validation accuracy; where a layer ran at several "
            "widths, the width with the best validation accuracy (d)."
        )
        + table
        + figure_html(fig, "best accuracy by task and layer combination")
    )


def accuracy_vs_length(data: ReportData) -> str | None:
    """Best accuracy against ``seq_len`` and ``num_kv_pairs``: a panel per task, a line
    per layer combination. None when no run records either setting."""
    colors = color_map(data.labels())
    parts = []
    for key, axis_name in LENGTH_SETTINGS:
        points = [(c, task_setting(c.runs[0], key)) for c in result_cells(data.runs, data.run_labels)]
        points = [(c, x) for c, x in points if x is not None]
        if not points:
            continue
        by_task = group((c.task, (c.label, x, c)) for c, x in points)
        fig, axes = subplots(len(by_task))
        for ax, (task, entries) in zip(axes, sorted(by_task.items())):
            cells = group(((lb, x), c) for lb, x, c in entries)  # {(label, x): [cell]}
            for label in sorted({lb for lb, _ in cells}):
                xs = sorted(x for lb, x in cells if lb == label)
                ys = [_by_validation(cells[(label, x)]).mean for x in xs]
                ax.plot(xs, ys, marker="o", label=label, color=colors[label])
            all_x = [x for _, x, _ in entries]
            if use_log_x(all_x):
                log2_x_axis(ax, all_x)
            ax.set_title(task)
            ax.set_xlabel(axis_name)
            ax.set_ylabel("test accuracy")
            ax.set_ylim(-0.02, 1.02)
            legend(ax)
        parts.append(figure_html(fig, f"test accuracy against {axis_name}"))
    if not parts:
        return None
    return caption(
        "Mean test accuracy over seeds at each setting (learning rate picked on validation), "
        "one line per layer combination."
    ) + "".join(parts)


RECALL_TARGET = 0.99  # the accuracy at which Zoology counts a setting as solved


def recall_vs_state(data: ReportData) -> str | None:
    """Zoology's headline figure: accuracy against memory-state bytes (log x), a line per
    layer combination through its best accuracy at each state size, a panel per task, the
    0.99 target dashed; then a table of the smallest state at which each layer reaches it."""
    points = [c for c in result_cells(data.runs, data.run_labels) if (c.state_bytes or 0) > 0]
    if not points:
        return None
    colors = color_map(data.labels())
    by_task = group((task_label(c), c) for c in points)
    fig, axes = subplots(len(by_task))
    rows = []
    for ax, (task, cells) in zip(axes, sorted(by_task.items())):
        for label, group_cells in sorted(group((c.label, c) for c in cells).items()):
            frontier = _by_state(group_cells)  # [(bytes, mean test accuracy)], bytes ascending
            ax.plot(*zip(*frontier), marker="o", color=colors[label], label=label, alpha=0.8)
            reached = [b for b, a in frontier if a >= RECALL_TARGET]
            best_bytes, best = max(frontier, key=lambda point: point[1])
            rows.append(
                (
                    task,
                    label,
                    f"{reached[0]:,}" if reached else "not reached",
                    f"{best:.3f}",
                    f"{best_bytes:,}",
                    sum(len(c.runs) for c in group_cells),
                )
            )
        ax.axhline(RECALL_TARGET, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_title(task)
        ax.set_xlabel("memory state (bytes per sequence)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        legend(ax)
    header = (
        "task",
        "layers",
        f"smallest state reaching {RECALL_TARGET}",
        "best mean accuracy",
        "at state bytes",
        "runs (picked lr)",
    )
    return (
        caption(
            "Mean test accuracy over seeds (learning rate picked on validation) against the bytes "
            "of memory state a sequence carries: the better memory recalls more with fewer bytes "
            f"(up and to the left); dashed: {RECALL_TARGET}."
        )
        + figure_html(fig, "accuracy against memory-state bytes")
        + html_table(header, rows)
    )


def _by_state(cells: list[Cell]) -> list[tuple[int, float]]:
    """``[(state bytes, mean test accuracy)]`` by ascending bytes; of several cells with one
    state size, the one with the best validation accuracy."""
    by_bytes = group((c.state_bytes, c) for c in cells)
    return sorted((b, _by_validation(cs).mean) for b, cs in by_bytes.items())


def learning_curves(data: ReportData) -> str | None:
    """Accuracy per epoch, a line per run, a panel per task."""
    curves = []
    for r in data.runs:
        pts = [(number(p.get("epoch", i)), number(p.get("accuracy"))) for i, p in enumerate(r.curve)]
        pts = [(e, a) for e, a in pts if e is not None and a is not None]
        if pts:
            curves.append((r, sorted(pts)))
    if not curves:
        return None
    colors = color_map(data.labels())
    by_task = group((r.task, (r, pts)) for r, pts in curves)
    fig, axes = subplots(len(by_task), width=3.8, height=2.8)
    for ax, (task, entries) in zip(axes, sorted(by_task.items())):
        for r, pts in entries:
            label = data.label(r)
            ax.plot(
                [e for e, _ in pts],
                [a for _, a in pts],
                color=colors[label],
                label=label,
                alpha=0.8,
                linewidth=1.2,
            )
        ax.set_title(task)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.set_ylim(-0.02, 1.02)
        legend(ax, loc="lower right")
    return caption("Evaluation accuracy after each epoch, one line per run.") + figure_html(
        fig, "learning curves"
    )
