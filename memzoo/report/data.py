"""What a report section receives, and the small helpers every section shares.

A section is a :class:`Section`: an ``id`` (the HTML anchor), a ``title`` and a
``render(data: ReportData) -> str | None`` function returning an HTML fragment, or None
to leave the section out (no data for it). Every text that comes from the store goes
through :func:`esc` or :func:`html_table`, which escape it.
"""

from __future__ import annotations

import functools
import html
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from memzoo.report.variants import layer_label, run_labels
from memzoo.results.record import RunRecord
from memzoo.results.store import RESULT_STATUSES, ResultsStore


@dataclass
class ReportData:
    """Everything a report shows, read once from the store.

    ``runs``: every run (any status), curves included; ``speed``: speed-benchmark rows."""

    runs: list[RunRecord]
    speed: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    @classmethod
    def from_store(cls, store: ResultsStore) -> ReportData:
        return cls(runs=store.runs(), speed=store.speed_rows(), source=str(store.path))

    def scored(self) -> list[RunRecord]:
        """Runs that finished with a finite final ``accuracy``: the points of every plot."""
        return [r for r in self.runs if r.status in RESULT_STATUSES and accuracy(r) is not None]

    @functools.cached_property
    def run_labels(self) -> dict[str, str]:
        """``{run_id: label}``: the layer combination, with the model settings that tell apart
        runs of one task and layer combination (an ablation; see :mod:`memzoo.report.variants`)."""
        return run_labels(self.runs)

    def label(self, run: RunRecord) -> str:
        return self.run_labels.get(run.run_id) or layer_label(run.layers)

    def labels(self) -> list[str]:
        """Every run label, sorted: the fixed order of colours and columns."""
        return sorted({self.label(r) for r in self.runs})


class Section(NamedTuple):
    """One report section: ``render`` returns its HTML body, or None to omit it."""

    id: str
    title: str
    render: Callable[[ReportData], str | None]


def number(value: Any) -> float | None:
    """``value`` as a finite float, or None (bools, text, NaN and inf are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def accuracy(run: RunRecord) -> float | None:
    """The final accuracy of a run (``metrics["accuracy"]``), or None."""
    return number(run.metrics.get("accuracy"))


def _numeric_setting(run: RunRecord, section: str, key: str) -> float | None:
    part = run.config.get(section) if isinstance(run.config, dict) else None
    return number(part.get(key)) if isinstance(part, dict) else None


def task_setting(run: RunRecord, key: str) -> float | None:
    """A numeric task setting, ``config["task"][key]`` (e.g. ``seq_len``), or None."""
    return _numeric_setting(run, "task", key)


def train_setting(run: RunRecord, key: str) -> float | None:
    """A numeric training setting, ``config["train"][key]`` (e.g. ``lr``, ``seed``), or None."""
    return _numeric_setting(run, "train", key)


def seed_order(run: RunRecord) -> tuple[float, str]:
    """A sort key putting a cell's runs in seed order (a run without a seed as seed 0), ties
    by run id, so "seed 0 / seed 1" columns and "the first seed" mean the same everywhere."""
    return train_setting(run, "seed") or 0, run.run_id


def setting_label(run: RunRecord) -> str:
    """The run's task with its parameters: ``mqar (num_kv_pairs=4, seq_len=64, vocab_size=256)``."""
    task = run.config.get("task", {}) if isinstance(run.config, dict) else {}
    task = task if isinstance(task, dict) else {}
    params = ", ".join(
        f"{k}={task[k]}" for k in sorted(task) if k != "name" and not isinstance(task[k], dict | list)
    )
    return f"{run.task} ({params})" if params else run.task


def group(items: Iterable[tuple[Any, float]]) -> dict[Any, list[float]]:
    """Collect values by key: ``[(k, v), ...] -> {k: [v, ...]}`` in first-seen key order."""
    out: dict[Any, list[float]] = defaultdict(list)
    for key, value in items:
        out[key].append(value)
    return dict(out)


def esc(value: Any) -> str:
    """Text for HTML: escaped, quotes included (safe in attributes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt(value: Any, digits: int = 3) -> str:
    """A table cell: ints with thousands separators, floats rounded, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def html_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], *, raw_columns: Sequence[int] = ()
) -> str:
    """An HTML table; every header and cell is escaped, except cells in ``raw_columns``,
    which the caller has already built from escaped parts."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            text = cell if i in raw_columns else esc(fmt(cell))
            numeric = isinstance(cell, (int, float)) and not isinstance(cell, bool)
            cells.append(f'<td class="num">{text}</td>' if numeric else f"<td>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def caption(text: str) -> str:
    """A short explanatory paragraph under a section heading (``text`` is escaped)."""
    return f'<p class="caption">{esc(text)}</p>'
