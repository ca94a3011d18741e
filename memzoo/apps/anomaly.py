"""Anomaly detection from forecast errors, scored on a series with injected anomalies.

Shape legend: L series length, F features, N scored points (the held-out tail).

A point is anomalous when the trained forecaster could not see it coming: for each point ``t``
of the tail the model forecasts ``y[t]`` from the ``context_len`` values before it (its first
forecast step), the residual is ``r_t = y[t] - forecast``, and the anomaly score is the
standardised residual ``z_t = (r_t - median(r)) / (1.4826 * MAD(r))`` — median and MAD rather
than mean and standard deviation, so the anomalies themselves barely move the scale. A point
is flagged when ``|z_t| > threshold``.

Evaluation injects anomalies of two kinds into the tail at known positions — a **spike** (one
value moved) and a **level shift** (every value from there on moved) — each
``magnitude`` times the typical step of the series (the standard deviation of its first
differences over the training part), with a random sign. With ``tolerance`` τ:

- recall: the fraction of anomalies at ``p`` with a flagged point in ``[p, p + τ]``;
- precision: the fraction of flagged points that lie in ``[p, p + τ]`` of some anomaly.
"""

from __future__ import annotations

import numpy as np
import torch

from memzoo.apps.forecasting import predict
from memzoo.errors import ConfigError
from memzoo.tasks.forecast import Forecast

KINDS = ("spike", "level_shift")
MAD_TO_STD = 1.4826  # MAD of a normal distribution times this is its standard deviation


def inject_anomalies(
    series: np.ndarray, *, start: int, stop: int, num: int, size: float, seed: int, min_gap: int = 1
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A copy of ``series`` (raw ``[L]`` or ``[L, F]``; column 0 is changed) with ``num`` anomalies.

    Positions are drawn from ``[start, stop)``, at least ``min_gap`` apart; kinds alternate
    spike, level shift, ...; each moves the value(s) by ``±size`` (a level shift moves every
    value from its position to the end of the series).

    Returns:
        ``(corrupted, positions [num] sorted, kinds)``.
    """
    corrupted = np.array(series, dtype=np.float64, copy=True)
    column = corrupted if corrupted.ndim == 1 else corrupted[:, 0]  # a view: edits land in corrupted
    slots = (stop - start) // min_gap
    if num > slots:
        raise ConfigError(f"num_anomalies={num} do not fit {stop - start} points at least {min_gap} apart")
    rng = np.random.default_rng(seed)
    # Distinct cells of min_gap points, one anomaly at the same offset in each: any two lie at
    # least min_gap apart. The offset uses the points left over after the last whole cell.
    cells = np.sort(rng.choice(slots, size=num, replace=False))
    offset = int(rng.integers(0, stop - start - slots * min_gap + 1))
    positions = start + offset + cells * min_gap
    kinds = [KINDS[i % len(KINDS)] for i in range(num)]
    signs = rng.choice([-1.0, 1.0], size=num)
    for position, kind, sign in zip(positions, kinds, signs):
        if kind == "spike":
            column[position] += sign * size
        else:
            column[position:] += sign * size
    return corrupted, positions, kinds


def anomaly_scores(
    model: torch.nn.Module, task: Forecast, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised one-step residuals over the tail of ``values`` (raw ``[L, F]``, the task's
    series length): one per test-window origin, ``task.origins("test")``.

    Returns:
        ``(positions [N], z [N])``: each scored point of the tail and its score.
    """
    values = values.reshape(len(values), -1)
    positions = task.origins("test")
    forecast = predict(model, task, positions, values)[:, 0]  # [N]
    residual = values[positions, 0] - forecast
    centre = np.median(residual)
    scale = MAD_TO_STD * np.median(np.abs(residual - centre))
    return positions, (residual - centre) / max(scale, 1e-12)


def evaluate_anomalies(
    model: torch.nn.Module,
    task: Forecast,
    *,
    num_anomalies: int = 4,
    magnitude: float = 6.0,
    threshold: float = 4.0,
    tolerance: int = 2,
    min_gap: int | None = None,
    seed: int = 0,
) -> dict:
    """Inject anomalies into ``task``'s held-out tail and score their detection by ``model``.

    Args:
        model: a forecaster trained on ``task`` (on the clean training part).
        num_anomalies: how many to inject (alternately spikes and level shifts).
        magnitude: size of each, in standard deviations of the training part's first
            differences.
        threshold: flag points with ``|z| > threshold``.
        tolerance: a flag up to this many steps after an anomaly still counts as finding it.
        min_gap: least distance between anomalies; default ``context_len``, so that the
            forecasts an anomaly disturbs (those whose context holds it) never overlap the next.
        seed: positions and signs.

    Returns:
        ``{"precision", "recall", "f1", "num_anomalies", "num_flagged", "threshold",
        "magnitude", "positions", "flagged"}`` (positions and flagged as lists of indices).
    """
    prep = task.prepared()
    typical_step = float(np.diff(prep.values[: prep.train_len, 0]).std())
    # Keep anomalies context_len apart so each one's effect on later forecasts ends first.
    scored = task.origins("test")
    corrupted, positions, _ = inject_anomalies(
        prep.values,
        start=int(scored[0]),
        stop=int(scored[-1]) + 1,
        num=num_anomalies,
        size=magnitude * typical_step,
        seed=seed,
        min_gap=min_gap or task.context_len,
    )
    scored, z = anomaly_scores(model, task, corrupted)
    flagged = scored[np.abs(z) > threshold]
    offsets = flagged[:, None] - positions[None, :]  # [flags, anomalies]
    near = (offsets >= 0) & (offsets <= tolerance)
    precision = float(near.any(axis=1).mean()) if len(flagged) else 0.0
    recall = float(near.any(axis=0).mean()) if num_anomalies else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "num_anomalies": int(num_anomalies),
        "num_flagged": int(len(flagged)),
        "threshold": threshold,
        "magnitude": magnitude,
        "positions": positions.tolist(),
        "flagged": flagged.tolist(),
    }
