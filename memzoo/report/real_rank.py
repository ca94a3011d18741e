"""Does the synthetic recall ranking hold on real sequences? Spearman rank correlations.

**The recall ranking**: for each layer combination, the mean over its recall cells of the
cell's mean test accuracy (MQAR; the learning rate picked on validation, seeds averaged,
:mod:`memzoo.report.cells`), where the recall cells are those of the runs stored by the
``quick`` suite and, where measured, ``frontier_cpu`` (one cell per width there).

**A real ranking**: per real task setting, each layer combination's test metric (mean over
seeds at its picked learning rate, :mod:`memzoo.report.real_cells`), signed so that higher is
better (bits per byte and NLL are negated). So rho > 0 says the layers that recall better in
MQAR also do better on the real task; rho = 1: the same order.

**Spearman's rho** over the layer combinations present in both (``n``): the Pearson correlation
of their ranks, ties given their average rank; its two-sided p-value from
``scipy.stats.spearmanr`` (scipy comes with scikit-learn; without it the p-value is "n/a").
With fewer than 3 shared layers, or a ranking that is all ties, rho is "n/a".

>>> round(spearman_rho([1, 2, 3, 4], [10, 20, 30, 40]), 6), round(spearman_rho([1, 2, 3], [3, 2, 1]), 6)
(1.0, -1.0)
>>> spearman_rho([1, 2], [1, 2]) is None, spearman_rho([1, 1, 1], [1, 2, 3]) is None
(True, True)
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

from memzoo.report.cells import result_cells
from memzoo.report.data import ReportData
from memzoo.report.real_cells import RealCell

RECALL_SUITES = ("quick", "frontier_cpu")
MIN_LAYERS = 3


def average_ranks(values: list[float]) -> list[float]:
    """1-based ranks of ``values`` (ascending), ties sharing their average rank.

    >>> average_ranks([0.5, 0.1, 0.5, 0.9])
    [2.5, 1.0, 2.5, 4.0]
    """
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def spearman_rho(x: list[float], y: list[float]) -> float | None:
    """Spearman's rho of the paired ``x`` and ``y`` (see the module); None with fewer than
    :data:`MIN_LAYERS` pairs or when either side is all ties."""
    if len(x) != len(y) or len(x) < MIN_LAYERS:
        return None
    rx, ry = average_ranks(list(x)), average_ranks(list(y))
    mx, my = statistics.fmean(rx), statistics.fmean(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx, syy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def spearman_p(x: list[float], y: list[float]) -> float | None:
    """The two-sided p-value of ``scipy.stats.spearmanr(x, y)``; None without scipy or a
    defined rho."""
    if spearman_rho(x, y) is None:
        return None
    try:
        from scipy.stats import spearmanr
    except ImportError:
        return None
    p = float(spearmanr(x, y).pvalue)
    return p if math.isfinite(p) else None


def recall_scores(data: ReportData) -> dict[str, tuple[float, int]]:
    """``{label: (recall score, number of recall cells)}`` (see the module)."""
    runs = [r for r in data.runs if r.suite in RECALL_SUITES]
    by_label: dict[str, list[float]] = {}
    for cell in result_cells(runs, data.run_labels):
        by_label.setdefault(cell.label, []).append(cell.mean)
    return {label: (statistics.fmean(means), len(means)) for label, means in sorted(by_label.items())}


@dataclass(frozen=True)
class Agreement:
    """The rank correlation of one real task setting with the recall ranking."""

    setting: str
    metric: str
    layers: tuple[str, ...]  # shared by both rankings, best first on the real task
    rho: float | None
    p_value: float | None

    @property
    def n(self) -> int:
        return len(self.layers)


def agreement(setting: str, cells: list[RealCell], recall: dict[str, tuple[float, int]]) -> Agreement:
    """Spearman's rho between ``recall`` and the real ranking of ``cells`` (one setting)."""
    shared = [c for c in cells if c.label in recall]  # cells come best first: so do the layers
    x = [recall[c.label][0] for c in shared]
    y = [c.mean if c.spec.higher_is_better else -c.mean for c in shared]
    metric = cells[0].spec.label if cells else ""
    return Agreement(setting, metric, tuple(c.label for c in shared), spearman_rho(x, y), spearman_p(x, y))
