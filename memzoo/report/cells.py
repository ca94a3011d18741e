"""From runs to result cells: the learning rate picked on validation, seeds averaged.

A *cell* is one setting of a comparison: every run whose config is the same except for
``train.lr`` and ``train.seed`` (task with its parameters, layers, width, options, budget).
Within a cell the learning rate with the highest mean *validation* accuracy over its seeds is
picked (Zoology sweeps learning rates the same way; picking on test would report the luckiest
draw), and the cell reports the *test* accuracy of that learning rate's runs: mean, standard
deviation and the number of seeds. A run without stored validation metrics (made before
validation existed) is picked by its test accuracy and the cell says so (``picked_on``).

>>> from memzoo.results.record import RunRecord
>>> def run(lr, seed, val, test):
...     config = {"task": {"name": "mqar"}, "model": {"layers": ["gru"]}, "train": {"lr": lr, "seed": seed}}
...     return RunRecord(run_id=f"{lr}-{seed}", config=config, config_hash="h", status="completed",
...                      task="mqar", layers=["gru"], metrics={"accuracy": test, "validation": {"accuracy": val}})
>>> cell, = result_cells([run(1e-3, 0, 0.5, 0.9), run(1e-3, 1, 0.5, 0.8), run(1e-2, 0, 0.7, 0.6)])
>>> cell.lr, cell.test, cell.picked_on   # 1e-2 wins on validation, though its test is lower
(0.01, [0.6], 'validation')
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

from memzoo.report.data import accuracy, group, layer_label, number, train_setting
from memzoo.results.record import RunRecord
from memzoo.results.store import RESULT_STATUSES

SWEPT = ("lr", "seed")  # train settings that vary inside one cell


@dataclass
class Cell:
    """One compared setting, reduced to the picked learning rate's runs."""

    task: str
    label: str  # layer combination
    runs: list[RunRecord]  # the runs at the picked learning rate (one per seed)
    lr: float | None
    lrs: list[float]  # every learning rate tried
    validation: float | None  # mean validation accuracy at the picked rate
    test: list[float] = field(default_factory=list)  # test accuracy per seed at that rate
    picked_on: str = "validation"

    @property
    def mean(self) -> float:
        return statistics.fmean(self.test)

    @property
    def std(self) -> float:
        return statistics.stdev(self.test) if len(self.test) > 1 else 0.0

    @property
    def state_bytes(self) -> int | None:
        values = [int(r.state_bytes) for r in self.runs if number(r.state_bytes)]
        return max(values) if values else None

    @property
    def config(self) -> dict:
        return self.runs[0].config

    def summary(self) -> str:
        """``0.912 ± 0.010 (n=3, lr 3e-3)``."""
        spread = f" ± {self.std:.3f}" if len(self.test) > 1 else ""
        lr = f", lr {self.lr:g}" if self.lr is not None else ""
        return f"{self.mean:.3f}{spread} (n={len(self.test)}{lr})"


def validation_accuracy(run: RunRecord) -> float | None:
    validation = run.metrics.get("validation")
    return number(validation.get("accuracy")) if isinstance(validation, dict) else None


def cell_key(run: RunRecord) -> str:
    """The run's config without the swept train settings, with its task, layers and state
    size (what the config already fixes, kept for records that carry no config)."""
    config = json.loads(json.dumps(run.config, default=str))
    train = config.get("train") if isinstance(config, dict) else None
    if isinstance(train, dict):
        for name in SWEPT:
            train.pop(name, None)
    return json.dumps([config, run.task, run.layers, run.state_bytes], sort_keys=True, default=str)


def result_cells(runs: list[RunRecord], labels: Mapping[str, str] | None = None) -> list[Cell]:
    """The cells of the runs that count (finished, not truncated, with a test accuracy).
    ``labels`` (``{run_id: label}``, e.g. ``ReportData.run_labels``) names each cell; by
    default its layer combination."""
    scored = [r for r in runs if r.status in RESULT_STATUSES and accuracy(r) is not None]
    by_key: dict[str, list[RunRecord]] = {}
    for run in scored:
        by_key.setdefault(cell_key(run), []).append(run)
    return [_cell(group, labels or {}) for group in by_key.values()]


def _cell(runs: list[RunRecord], labels: Mapping[str, str]) -> Cell:
    by_lr = group((train_setting(run, "lr"), run) for run in runs)
    with_validation = all(validation_accuracy(r) is not None for r in runs)
    score = validation_accuracy if with_validation else accuracy

    def mean_score(lr) -> float:
        return statistics.fmean(score(r) for r in by_lr[lr])

    lr = max(by_lr, key=mean_score)
    picked = by_lr[lr]
    return Cell(
        task=runs[0].task,
        label=labels.get(runs[0].run_id) or layer_label(runs[0].layers),
        runs=picked,
        lr=lr,
        lrs=sorted(x for x in by_lr if x is not None),
        validation=statistics.fmean(validation_accuracy(r) for r in picked) if with_validation else None,
        test=[accuracy(r) for r in picked],
        picked_on="validation" if with_validation else "test (no validation stored)",
    )
