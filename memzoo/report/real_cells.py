"""The real-sequence tasks' results as cells: each task's metric, its baselines, and the runs
of one setting reduced to the learning rate picked on validation, seeds averaged.

One metric per task, with its direction and the model-free baselines the task stores beside it
(``Task.baseline_metrics``, fitted on training data only and scored on the run's test data):

- ``text_lm``: ``bpb``, bits per byte of the test tiles (cross-entropy in nats / ln 2, one
  token a byte; lower is better) against the byte n-gram (``ngram_bpb``, order
  ``ngram_order``) and unigram (``unigram_bpb``) fitted on the training documents;
- ``needle_text``: ``accuracy``, the fraction of answer bytes (the pass key's digits) predicted
  right at the training length (higher is better) against always the most frequent training
  answer byte (``majority_byte_accuracy``) and a uniform digit (``chance_byte_accuracy``, 0.1);
- ``series_classify``: ``accuracy`` on the archive's test series against ROCKET + ridge
  (``rocket_accuracy``), 1-NN DTW as measured here (``dtw_measured``, or
  ``dtw_down<k>_measured`` on series averaged over runs of k steps), the archive's published
  1-NN DTW (``dtw_published``) and the majority class (``majority_accuracy``);
- ``chorales``: ``nll_per_step``, the Bernoulli NLL summed over the 88 keys per scored frame
  in nats (lower is better) against the previous frame repeated (``repeat_nll_per_step``) and
  the keys' training frequencies (``frequency_nll_per_step``).

A *cell* is every run of one config but ``train.lr`` and ``train.seed``
(:func:`memzoo.report.cells.cell_key`). Its learning rate is picked on the validation score
the trainer selected checkpoints by (``validation.nll_per_step`` for chorales, lower is
better; ``validation.accuracy`` for the others, higher is better), or on the test metric
where a run stored no validation (the cell says so); the cell reports the test metric of that
rate's runs, one per seed. Runs that failed, were truncated, or stored no finite metric are
left out.

>>> spec = REAL_METRICS["series_classify"]
>>> stored_baselines(spec, {"rocket_accuracy": 0.9, "dtw_down4_measured": 0.2, "majority_accuracy": "x"})
[('ROCKET + ridge', 0.9), ('1-NN DTW, series averaged over 4 steps', 0.2)]
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from memzoo.report.cells import cell_key
from memzoo.report.data import ReportData, group, number, train_setting
from memzoo.results.record import RunRecord
from memzoo.results.store import RESULT_STATUSES

DTW_DOWN = re.compile(r"^dtw_down(\d+)_measured$")
HIDDEN_SETTINGS = ("name", "cache_dir")  # task params that do not tell settings apart


@dataclass(frozen=True)
class RealMetric:
    """A task's metric (``key`` in a run's metrics), its direction, the validation score that
    picks the learning rate, and its baselines as ``(metrics key, label)``."""

    label: str
    key: str
    higher_is_better: bool
    validation_key: str
    validation_higher: bool
    baselines: tuple[tuple[str, str], ...]

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b


REAL_METRICS: dict[str, RealMetric] = {
    "text_lm": RealMetric(
        "bits per byte",
        "bpb",
        False,
        "accuracy",
        True,
        (("ngram_bpb", "byte n-gram"), ("unigram_bpb", "byte unigram")),
    ),
    "needle_text": RealMetric(
        "answer byte accuracy",
        "accuracy",
        True,
        "accuracy",
        True,
        (("majority_byte_accuracy", "majority answer byte"), ("chance_byte_accuracy", "uniform digit")),
    ),
    "series_classify": RealMetric(
        "accuracy",
        "accuracy",
        True,
        "accuracy",
        True,
        (
            ("rocket_accuracy", "ROCKET + ridge"),
            ("dtw_measured", "1-NN DTW"),
            ("dtw_published", "1-NN DTW (UCR archive, published)"),
            ("majority_accuracy", "majority class"),
        ),
    ),
    "chorales": RealMetric(
        "NLL per step (nats)",
        "nll_per_step",
        False,
        "nll_per_step",
        False,
        (("repeat_nll_per_step", "repeat the previous frame"), ("frequency_nll_per_step", "key frequencies")),
    ),
}


def metrics_of(run: RunRecord) -> dict[str, Any]:
    """A run's metrics dict ({} when the store holds something else)."""
    return run.metrics if isinstance(run.metrics, dict) else {}


def stored_baselines(spec: RealMetric, metrics: dict[str, Any]) -> list[tuple[str, float]]:
    """``[(label, value)]`` of the baselines ``metrics`` holds as finite numbers, in the
    order of ``spec.baselines`` (a ``dtw_down<k>_measured`` key stands for ``dtw_measured``)."""
    out = []
    for key, label in spec.baselines:
        value = number(metrics.get(key))
        if value is not None:
            order = metrics.get("ngram_order")
            named = key == "ngram_bpb" and isinstance(order, int) and not isinstance(order, bool)
            out.append((f"byte {order}-gram" if named else label, value))
        elif key == "dtw_measured":
            for name, stored in sorted(metrics.items()):
                match = DTW_DOWN.match(str(name))
                if match and number(stored) is not None:
                    out.append((f"{label}, series averaged over {match.group(1)} steps", number(stored)))
    return out


def setting_name(run: RunRecord) -> str:
    """The task with the parameters that tell its settings apart (not its ``cache_dir``):
    ``series_classify (dataset=GunPoint)``."""
    config = run.config if isinstance(run.config, dict) else {}
    task = config.get("task") if isinstance(config.get("task"), dict) else {}
    params = ", ".join(
        f"{k}={task[k]}"
        for k in sorted(task)
        if k not in HIDDEN_SETTINGS and not isinstance(task[k], dict | list)
    )
    return f"{run.task} ({params})" if params else str(run.task)


@dataclass
class RealCell:
    """One layer combination on one task setting, at its picked learning rate."""

    setting: str
    label: str
    spec: RealMetric
    runs: list[RunRecord]
    lr: float | None
    values: list[float]  # the test metric per seed
    picked_on: str = "validation"
    baselines: dict[str, float] = field(default_factory=dict)  # label -> mean over the runs

    @property
    def task(self) -> str:
        return self.runs[0].task

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0

    @property
    def state_bytes(self) -> int | None:
        values = [int(r.state_bytes) for r in self.runs if number(r.state_bytes)]
        return max(values) if values else None

    def summary(self) -> str:
        """``2.310 ± 0.020 (n=2, lr 0.003)``."""
        spread = f" ± {self.std:.3f}" if len(self.values) > 1 else ""
        lr = f", lr {self.lr:g}" if self.lr is not None else ""
        return f"{self.mean:.3f}{spread} (n={len(self.values)}{lr})"


def _validation(spec: RealMetric, run: RunRecord) -> float | None:
    validation = metrics_of(run).get("validation")
    return number(validation.get(spec.validation_key)) if isinstance(validation, dict) else None


def _pick(spec: RealMetric, runs: list[RunRecord]) -> tuple[float | None, list[RunRecord], str]:
    """The learning rate picked (see the module), its runs, and what it was picked on."""
    by_lr = group((train_setting(run, "lr"), run) for run in runs)
    on_validation = all(_validation(spec, r) is not None for r in runs)
    if on_validation:
        sign, score, picked_on = (1.0 if spec.validation_higher else -1.0), _validation, "validation"
    else:
        sign = 1.0 if spec.higher_is_better else -1.0
        score, picked_on = (lambda s, r: number(metrics_of(r).get(s.key))), "test (no validation stored)"
    lr = max(by_lr, key=lambda rate: sign * statistics.fmean(score(spec, r) for r in by_lr[rate]))
    return lr, by_lr[lr], picked_on


def _cell(setting: str, label: str, spec: RealMetric, runs: list[RunRecord]) -> RealCell:
    lr, picked, picked_on = _pick(spec, runs)
    baselines: dict[str, list[float]] = {}
    for run in picked:
        for name, value in stored_baselines(spec, metrics_of(run)):
            baselines.setdefault(name, []).append(value)
    return RealCell(
        setting,
        label,
        spec,
        picked,
        lr,
        [number(metrics_of(r).get(spec.key)) for r in picked],
        picked_on,
        {name: statistics.fmean(values) for name, values in baselines.items()},
    )


def real_cells(data: ReportData) -> dict[str, list[RealCell]]:
    """``{setting: [cell, ...]}``: per task setting one cell per layer combination (the one
    with the best validation score where several configs share a label), best metric first."""
    by_key: dict[str, list[RunRecord]] = {}
    for run in data.runs:
        spec = REAL_METRICS.get(run.task)
        if spec is None or run.status not in RESULT_STATUSES:
            continue
        if number(metrics_of(run).get(spec.key)) is None:
            continue
        by_key.setdefault(cell_key(run), []).append(run)
    chosen: dict[tuple[str, str], RealCell] = {}
    for runs in by_key.values():
        spec = REAL_METRICS[runs[0].task]
        cell = _cell(setting_name(runs[0]), data.label(runs[0]), spec, runs)
        key = (cell.setting, cell.label)
        if key not in chosen or _cell_score(cell) > _cell_score(chosen[key]):
            chosen[key] = cell
    out: dict[str, list[RealCell]] = {}
    for (setting, _), cell in sorted(chosen.items()):
        out.setdefault(setting, []).append(cell)
    for cells in out.values():
        cells.sort(key=lambda c: (-c.mean if c.spec.higher_is_better else c.mean, c.label))
    return out


def _cell_score(cell: RealCell) -> float:
    """Higher is better: the mean validation score (or test metric) of the cell's runs."""
    spec = cell.spec
    values = [_validation(spec, r) for r in cell.runs]
    if None in values:
        return cell.mean if spec.higher_is_better else -cell.mean
    mean = statistics.fmean(values)
    return mean if spec.validation_higher else -mean
