"""Forecasting baselines and errors, shared by the ``forecast`` task and ``memzoo.apps``.

Shape legend: L series length, N forecast origins, H horizon.
"""

from __future__ import annotations

import math

import numpy as np


def naive_forecast(series: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Last observed value repeated: ``[N, H]`` from a raw series ``[L]``."""
    return np.repeat(series[origins - 1][:, None], horizon, axis=1)


def seasonal_naive_forecast(series: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Value one season back that was observed before the origin: ``[N, H]``."""
    steps = np.arange(horizon)
    back = season * (steps // season + 1)  # [H]
    return series[origins[:, None] + steps - back]


def forecast_errors(forecast: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """MAE and RMSE of ``forecast`` against ``actual`` (same shape)."""
    diff = forecast - actual
    return float(np.abs(diff).mean()), float(math.sqrt((diff**2).mean()))
