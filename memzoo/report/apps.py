"""The report's Applications section: each application run's metric next to its baseline.

The five applications store, besides the metric the trainer evaluates, what a model-free
baseline scores on the same held-out data (``memzoo.train.task_metrics``; ``metrics`` keys):

- text_classify, digits: ``accuracy`` against the majority class (``majority_accuracy``);
- translate: chrF (``chrf``) against a word-by-word gloss (``gloss_chrf``) and copying the
  source (``identity_chrf``);
- forecast: MAE in standard deviations of the series (``mae``) against seasonal naive
  (``seasonal_naive_mae``) and naive (``naive_mae``) forecasts, in the same units;
- recommend: HR@10 (``hr@10``) against ranking by popularity (``popularity_hr@10``).

A recommend run stored before the trainer computed ``hr@10`` has none: its row compares
top-1 accuracy, i.e. HR@1, with ``popularity_hr@1``. A row's baseline is
the strongest of those the run stored (the highest chrF, the lowest MAE): the bar to clear.

>>> spec = APP_METRICS["forecast"][0]
>>> row = spec.row({"mae": 0.42, "seasonal_naive_mae": 0.82, "naive_mae": 0.75})
>>> row.baseline, row.baseline_value, row.beats, row.others
('naive (last value)', 0.75, True, (('seasonal naive', 0.82),))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

from memzoo.report.data import ReportData, caption, esc, fmt, html_table, layer_label, number
from memzoo.results.record import RunRecord
from memzoo.results.store import RESULT_STATUSES


class AppRow(NamedTuple):
    """A run's metric against its strongest stored baseline (``beats``: None without one);
    ``others`` are the weaker baselines as ``(label, value)``."""

    metric: str
    value: float
    baseline: str | None
    baseline_value: float | None
    beats: bool | None
    others: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class AppMetric:
    """One application metric: its label, its ``metrics`` key, its direction and the
    baselines it is compared with, as ``(metrics key, label)`` pairs."""

    label: str
    key: str
    higher_is_better: bool
    baselines: tuple[tuple[str, str], ...]

    def row(self, metrics: dict[str, Any]) -> AppRow | None:
        """The comparison for a run's ``metrics``, or None when the run lacks this metric."""
        value = number(metrics.get(self.key))
        if value is None:
            return None
        stored = [(label, number(metrics.get(key))) for key, label in self.baselines]
        stored = sorted(
            ((label, v) for label, v in stored if v is not None),
            key=lambda pair: -pair[1] if self.higher_is_better else pair[1],
        )
        if not stored:
            return AppRow(self.label, value, None, None, None)
        (name, best), others = stored[0], tuple(stored[1:])
        beats = value > best if self.higher_is_better else value < best
        return AppRow(self.label, value, name, best, beats, others)


_MAJORITY = (("majority_accuracy", "majority class"),)
# Per task, its metrics in order of preference: a row uses the first one the run stored.
APP_METRICS: dict[str, tuple[AppMetric, ...]] = {
    "text_classify": (AppMetric("accuracy", "accuracy", True, _MAJORITY),),
    "translate": (
        AppMetric(
            "chrF", "chrf", True, (("gloss_chrf", "word-by-word gloss"), ("identity_chrf", "copy the source"))
        ),
    ),
    "forecast": (
        AppMetric(
            "MAE (standardised)",
            "mae",
            False,
            (("seasonal_naive_mae", "seasonal naive"), ("naive_mae", "naive (last value)")),
        ),
    ),
    "digits": (AppMetric("accuracy", "accuracy", True, _MAJORITY),),
    "recommend": (
        AppMetric("HR@10", "hr@10", True, (("popularity_hr@10", "popularity"),)),
        AppMetric("HR@1 (accuracy)", "accuracy", True, (("popularity_hr@1", "popularity"),)),
    ),
}
HEADER = [
    "task",
    "layers",
    "metric",
    "model",
    "baseline",
    "baseline value",
    "beats baseline",
    "other baselines",
    "epochs",
    "wall seconds",
    "run id",
]


def app_label(run: RunRecord) -> str:
    """The application a run is: its task, with the series (forecast) or the file it read.

    >>> app_label(RunRecord(run_id="r", config={"task": {"series": "co2"}}, config_hash="h",
    ...                     status="completed", task="forecast", layers=["gru"]))
    'forecast (co2)'
    """
    task = run.config.get("task") if isinstance(run.config, dict) else None
    task = task if isinstance(task, dict) else {}
    if task.get("path"):
        return f"{run.task} ({os.path.basename(str(task['path']))})"
    if task.get("series"):
        return f"{run.task} ({task['series']})"
    return run.task


def app_rows(data: ReportData) -> list[list[Any]]:
    """One row (``HEADER``) per finished application run that stored its metric, sorted by
    application (the order of ``APP_METRICS``), then layers."""
    order = {task: i for i, task in enumerate(APP_METRICS)}
    keyed = []
    for run in data.runs:
        if run.status not in RESULT_STATUSES or run.task not in APP_METRICS:
            continue
        found = next((r for spec in APP_METRICS[run.task] if (r := spec.row(run.metrics))), None)
        if found is None:
            continue
        verdict = "–" if found.beats is None else ("yes" if found.beats else "no")
        others = "; ".join(f"{label} {fmt(value)}" for label, value in found.others) or None
        epochs = run.metrics.get("epochs")
        row = [
            app_label(run),
            layer_label(run.layers),
            found.metric,
            found.value,
            found.baseline,
            found.baseline_value,
            verdict,
            others,
            epochs if isinstance(epochs, int) else None,
            number(run.wall_seconds),
            run.run_id,
        ]
        keyed.append(((order[run.task], row[0], row[1], run.run_id), row))
    return [row for _, row in sorted(keyed, key=lambda pair: pair[0])]


def applications(data: ReportData) -> str | None:
    """The Applications table; None when the store holds no finished application run."""
    rows = app_rows(data)
    if not rows:
        return None
    judged = [row for row in rows if row[6] != "–"]
    wins = sum(row[6] == "yes" for row in judged)
    text = (
        f"Each application run's held-out metric next to the strongest model-free baseline it "
        f"stored, scored on the same held-out data: {wins} of {len(judged)} runs beat their "
        "baseline. Accuracy, chrF and HR@k: higher is better; forecast MAE (in the series' "
        "standard deviations, series_std in Extra metrics converts it): lower is better."
    )
    return caption(text) + html_table(HEADER, rows) + _legend()


def _legend() -> str:
    items = "".join(
        f"<li><b>{esc(task)}</b>: {esc(spec.label)} against "
        f"{esc(' / '.join(label for _, label in spec.baselines))}</li>"
        for task, specs in APP_METRICS.items()
        for spec in specs
    )
    return f'<ul class="caption">{items}</ul>'
