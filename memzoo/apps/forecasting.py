"""Forecast accuracy on the held-out tail, in the series' units, against two baselines.

Shape legend: N forecast origins (test windows), H ``horizon``, C ``context_len``.

For every origin ``o`` in the tail (the first value to forecast is ``y[o]``):

- the model: its ``H`` outputs, de-normalised;
- naive: the last observed value, ``y[o - 1]``, for every step;
- seasonal naive (season ``m``): step ``j`` (0-based) repeats the value one season earlier
  that was already observed, ``y[o + j - m * (j // m + 1)]``.

MAE and RMSE average over every origin and every step. All three see the same origins, so the
numbers compare directly; a ratio below 1 (``mae / seasonal_naive_mae``) means the model wins.
"""

from __future__ import annotations

import numpy as np
import torch

from memzoo.metrics.forecasting import forecast_errors, naive_forecast, seasonal_naive_forecast
from memzoo.tasks.forecast import Forecast


def predict(
    model: torch.nn.Module,
    task: Forecast,
    origins: np.ndarray,
    values: np.ndarray | None = None,
    batch_size: int = 512,
) -> np.ndarray:
    """The model's forecasts ``[N, H]`` in the series' units for windows at ``origins``.

    ``values`` (raw ``[L, F]``) replaces the task's series, e.g. with injected anomalies.
    """
    data = task.windows(origins, values)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            out, _ = model(data.inputs[start : start + batch_size].to(device))  # [B, H]
            outputs.append(out.float().cpu())
    model.train(was_training)
    if not outputs:
        return np.zeros((0, task.horizon))
    return task.to_units(torch.cat(outputs), origins, values).numpy()


def evaluate_forecast(model: torch.nn.Module, task: Forecast) -> dict:
    """MAE/RMSE of ``model`` on every tail window of ``task``, next to naive and seasonal naive.

    Returns:
        ``{"mae", "rmse", "naive_mae", "naive_rmse", "seasonal_naive_mae",
        "seasonal_naive_rmse", "season", "num_windows", "horizon"}`` (seasonal entries are
        ``None`` when the task has no season, e.g. a CSV without ``season``).
    """
    prep = task.prepared()
    series = prep.values[:, 0]  # [L]
    origins = task.origins("test")
    ahead = origins[:, None] + np.arange(task.horizon)  # [N, H]
    actual = series[ahead]
    metrics: dict = {"num_windows": int(len(origins)), "horizon": task.horizon, "season": task.season_length}
    metrics["mae"], metrics["rmse"] = forecast_errors(predict(model, task, origins), actual)
    metrics["naive_mae"], metrics["naive_rmse"] = forecast_errors(
        naive_forecast(series, origins, task.horizon), actual
    )
    if task.season_length is None:
        metrics["seasonal_naive_mae"] = metrics["seasonal_naive_rmse"] = None
    else:
        seasonal = seasonal_naive_forecast(series, origins, task.horizon, task.season_length)
        metrics["seasonal_naive_mae"], metrics["seasonal_naive_rmse"] = forecast_errors(seasonal, actual)
    return metrics
