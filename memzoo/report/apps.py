"""The report's Applications section: each application run's metric against the strongest
model-free baseline it stored, and where memzoo loses: one sentence per application, a figure
of the models' metric beside the baselines (:mod:`memzoo.report.apps_figure`) and a table.

The five applications store, besides the metric the trainer evaluates, what model-free
baselines fitted on the run's training data score on the same held-out data
(``Task.baseline_metrics``; ``metrics`` keys):

- text_classify: ``accuracy`` against the majority class (``majority_accuracy``) and TF-IDF +
  logistic regression (``tfidf_logreg_accuracy``);
- digits: ``accuracy`` against the majority class and logistic regression on the 64 pixels
  (``logreg_accuracy``);
- translate: chrF (``chrf``) against a word-by-word gloss (``gloss_chrf``) and copying the
  source (``identity_chrf``);
- forecast: MAE in standard deviations of the series (``mae``) against an autoregressive model
  fitted on the training part (``ar_mae``), seasonal naive (``seasonal_naive_mae``) and naive
  (``naive_mae``) forecasts, in the same units;
- recommend: HR@10 (``hr@10``) against an item-to-item Markov model (``markov_hr@10``) and
  ranking by popularity (``popularity_hr@10``).

A recommend run stored before the trainer computed ``hr@10`` has none: its row compares
top-1 accuracy, i.e. HR@1, with ``markov_hr@1`` / ``popularity_hr@1``. A row's baseline is the
strongest of those the run stored (the highest accuracy, chrF or HR, the lowest MAE): the bar
to clear; runs stored before a baseline existed are compared with the ones they have. Under
the table, one sentence per application (and metric) says whether its best model clears that
bar, and by how much it falls short where it does not.

>>> spec = APP_METRICS["forecast"][0]
>>> row = spec.row({"mae": 0.42, "seasonal_naive_mae": 0.82, "naive_mae": 0.75, "ar_mae": 0.4})
>>> row.baseline, row.baseline_value, row.beats, [label for label, _ in row.others]
('autoregressive (AR)', 0.4, False, ['naive (last value)', 'seasonal naive'])
>>> round(row.margin, 3)  # model − baseline: a higher MAE is worse
0.02
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

from memzoo.report.apps_figure import AppPoint, app_figure
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
    higher_is_better: bool = True

    @property
    def margin(self) -> float | None:
        """``model − baseline`` (None without a baseline); its sign says nothing by itself:
        for MAE a positive margin is a loss."""
        return None if self.baseline_value is None else self.value - self.baseline_value


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
            return AppRow(self.label, value, None, None, None, higher_is_better=self.higher_is_better)
        (name, best), others = stored[0], tuple(stored[1:])
        beats = value > best if self.higher_is_better else value < best
        return AppRow(self.label, value, name, best, beats, others, self.higher_is_better)


_MAJORITY = ("majority_accuracy", "majority class")
# Per task, its metrics in order of preference: a row uses the first one the run stored.
APP_METRICS: dict[str, tuple[AppMetric, ...]] = {
    "text_classify": (
        AppMetric(
            "accuracy",
            "accuracy",
            True,
            (("tfidf_logreg_accuracy", "TF-IDF + logistic regression"), _MAJORITY),
        ),
    ),
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
            (
                ("ar_mae", "autoregressive (AR)"),
                ("seasonal_naive_mae", "seasonal naive"),
                ("naive_mae", "naive (last value)"),
            ),
        ),
    ),
    "digits": (
        AppMetric(
            "accuracy", "accuracy", True, (("logreg_accuracy", "logistic regression on pixels"), _MAJORITY)
        ),
    ),
    "recommend": (
        AppMetric(
            "HR@10",
            "hr@10",
            True,
            (("markov_hr@10", "item-to-item Markov"), ("popularity_hr@10", "popularity")),
        ),
        AppMetric(
            "HR@1 (accuracy)",
            "accuracy",
            True,
            (("markov_hr@1", "item-to-item Markov"), ("popularity_hr@1", "popularity")),
        ),
    ),
    "speech_words": (
        AppMetric("accuracy", "accuracy", True, (("dtw_accuracy", "DTW nearest neighbour"), _MAJORITY)),
    ),
    # Digit strings have no model-free baseline: the ablation is a model (a 4-frame sliding
    # window, its own row), so the table shows the WER of every run side by side.
    "speech_digits": (AppMetric("WER", "wer", False, ()),),
}
HEADER = [
    "task",
    "layers",
    "metric",
    "model",
    "strongest baseline",
    "baseline value",
    "model − baseline",
    "beats baseline",
    "other baselines",
    "epochs",
    "wall seconds",
    "run id",
]
VERDICT = HEADER.index("beats baseline")


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


def _entries(data: ReportData) -> list[tuple[RunRecord, AppRow]]:
    """Each finished application run that stored its metric, with its comparison, sorted by
    application (the order of ``APP_METRICS``), then label, layers and run id."""
    order = {task: i for i, task in enumerate(APP_METRICS)}
    keyed = []
    for run in data.runs:
        if run.status not in RESULT_STATUSES or run.task not in APP_METRICS:
            continue
        found = next((r for spec in APP_METRICS[run.task] if (r := spec.row(run.metrics))), None)
        if found is not None:
            key = (order[run.task], app_label(run), layer_label(run.layers), run.run_id)
            keyed.append((key, (run, found)))
    return [entry for _, entry in sorted(keyed, key=lambda pair: pair[0])]


def app_rows(data: ReportData) -> list[list[Any]]:
    """One row (``HEADER``) per finished application run that stored its metric, sorted by
    application (the order of ``APP_METRICS``), then layers."""
    rows = []
    for run, found in _entries(data):
        verdict = "–" if found.beats is None else ("yes" if found.beats else "no")
        others = "; ".join(f"{label} {fmt(value)}" for label, value in found.others) or None
        epochs = run.metrics.get("epochs")
        rows.append(
            [
                app_label(run),
                layer_label(run.layers),
                found.metric,
                found.value,
                found.baseline,
                found.baseline_value,
                found.margin,
                verdict,
                others,
                epochs if isinstance(epochs, int) else None,
                number(run.wall_seconds),
                run.run_id,
            ]
        )
    return rows


def app_verdicts(data: ReportData) -> list[str]:
    """One sentence per application and metric with a baseline: does its best model beat the
    strongest baseline that run stored, by how much, and how many of its runs do.

    >>> from memzoo.results.record import RunRecord
    >>> def run(i, layer, acc):
    ...     return RunRecord(run_id=f"r{i}", config={}, config_hash="h", status="completed",
    ...                      task="digits", layers=[layer], metrics={"accuracy": acc,
    ...                      "logreg_accuracy": 0.967, "majority_accuracy": 0.1})
    >>> print(app_verdicts(ReportData(runs=[run(1, "gru", 0.9), run(2, "attention", 0.925)]))[0])
    digits, accuracy: memzoo loses. The best model, attention (0.925), falls short of logistic regression on pixels (0.967) by 0.042; 0 of 2 runs beat it.
    """
    groups: dict[tuple[str, str], list[tuple[RunRecord, AppRow]]] = {}
    for run, found in _entries(data):
        if found.beats is not None:
            groups.setdefault((app_label(run), found.metric), []).append((run, found))
    sentences = []
    for (label, metric), entries in groups.items():
        sign = 1.0 if entries[0][1].higher_is_better else -1.0
        run, best = max(entries, key=lambda entry: sign * entry[1].value)
        wins = sum(bool(found.beats) for _, found in entries)
        model = f"{layer_label(run.layers)} ({fmt(best.value)})"
        baseline = f"{best.baseline} ({fmt(best.baseline_value)})"
        gap = fmt(abs(best.margin))
        tally = f"{wins} of {len(entries)} runs beat it."
        if best.beats:
            sentences.append(
                f"{label}, {metric}: memzoo wins. The best model, {model}, beats the strongest "
                f"baseline, {baseline}, by {gap}; {tally}"
            )
        else:
            sentences.append(
                f"{label}, {metric}: memzoo loses. The best model, {model}, falls short of "
                f"{baseline} by {gap}; {tally}"
            )
    return sentences


def applications(data: ReportData) -> str | None:
    """The Applications table and one verdict per application; None when the store holds no
    finished application run."""
    rows = app_rows(data)
    if not rows:
        return None
    judged = [row for row in rows if row[VERDICT] != "–"]
    wins = sum(row[VERDICT] == "yes" for row in judged)
    text = (
        f"Each application run's held-out metric next to the strongest model-free baseline it "
        f"stored (fitted on the run's training data, scored on the same held-out data): {wins} "
        f"of {len(judged)} runs beat the strongest baseline. Accuracy, chrF and HR@k: higher is "
        "better; forecast MAE (in the series' standard deviations, series_std in Extra metrics "
        "converts it): lower is better, so there a positive model − baseline is a loss."
    )
    verdicts = "".join(f"<li>{esc(sentence)}</li>" for sentence in app_verdicts(data))
    verdict_list = f'<ul class="caption verdicts">{verdicts}</ul>' if verdicts else ""
    figure = app_figure(_points(data), data.labels())
    return caption(text) + verdict_list + figure + html_table(HEADER, rows) + _legend()


def _points(data: ReportData) -> list[AppPoint]:
    """The numbers of the Applications figure: each entry's metric and its stored baselines."""
    points = []
    for run, found in _entries(data):
        key = next(spec.key for spec in APP_METRICS[run.task] if spec.label == found.metric)
        stored = [(found.baseline, found.baseline_value)] if found.baseline is not None else []
        points.append(
            AppPoint(
                app_label(run),
                found.metric,
                key,
                found.higher_is_better,
                data.label(run),
                found.value,
                [*stored, *found.others],
            )
        )
    return points


def _legend() -> str:
    def against(spec: AppMetric) -> str:
        if not spec.baselines:  # e.g. speech digits: the ablation is a model, in its own row
            return "no model-free baseline; compare the runs' rows (the ablation is a run)"
        return "against " + " / ".join(label for _, label in spec.baselines)

    items = "".join(
        f"<li><b>{esc(task)}</b>: {esc(spec.label)} {esc(against(spec))}</li>"
        for task, specs in APP_METRICS.items()
        for spec in specs
    )
    return f'<ul class="caption">{items}</ul>'
