"""The report's opening summary: what the runs found, in sentences generated from the store.

For every task setting (a row of the accuracy table): which layer combinations solved it
(mean test accuracy over seeds ≥ ``SOLVED``, at the learning rate picked on validation) and
with how many bytes of state, and which stayed far below (< ``FAILED``). Runs stopped by the
wall-time cap (``truncated``) and failed runs are counted, never used.
"""

from __future__ import annotations

from memzoo.report.cells import Cell, result_cells
from memzoo.report.data import ReportData, esc, group
from memzoo.report.sections import task_label

SOLVED = 0.95
FAILED = 0.5


def _named(cells: list[Cell]) -> str:
    parts = []
    for c in sorted(cells, key=lambda c: (c.state_bytes or 0, c.label)):
        state = f", {c.state_bytes:,} B of state" if c.state_bytes else ""
        parts.append(f"{c.label} ({c.mean:.3f}{state})")
    return ", ".join(parts)


def summary(data: ReportData) -> str | None:
    """An HTML list: one sentence per task setting, then what was left out and why."""
    cells = result_cells(data.runs, data.run_labels)
    if not cells:
        return None
    items = []
    for task, task_cells in sorted(group((task_label(c), c) for c in cells).items()):
        best = {}
        for c in task_cells:  # one cell per layer combination: the best on validation
            key = c.label
            score = c.validation if c.validation is not None else c.mean
            if key not in best or score > best[key][0]:
                best[key] = (score, c)
        chosen = [c for _, c in best.values()]
        solved = [c for c in chosen if c.mean >= SOLVED]
        failed = [c for c in chosen if c.mean < FAILED]
        sentence = f"<b>{esc(task)}</b>: "
        sentence += (
            f"solved (mean test accuracy ≥ {SOLVED}) by {esc(_named(solved))}"
            if solved
            else f"no layer reached {SOLVED} (best: {esc(_named([max(chosen, key=lambda c: c.mean)]))})"
        )
        if failed:
            sentence += f"; far below ({FAILED}) stayed {esc(_named(failed))}"
        seeds = sorted({len(c.test) for c in chosen})
        lrs = sorted({len(c.lrs) for c in chosen})
        sentence += f". Seeds per cell: {', '.join(map(str, seeds))}; learning rates tried: {', '.join(map(str, lrs))}."
        items.append(f"<li>{sentence}</li>")
    left_out = group(
        (r.status, 1)
        for r in data.runs
        if r.status in ("truncated", "failed", "running", "queued", "interrupted")
    )
    if left_out:
        counts = ", ".join(f"{len(v)} {esc(k)}" for k, v in sorted(left_out.items()))
        items.append(f"<li>Left out of every table: {counts} run(s) (see the runs table).</li>")
    return "<ul>" + "".join(items) + "</ul>"
