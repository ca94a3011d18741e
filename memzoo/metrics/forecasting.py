"""Forecasting baselines and errors, shared by the ``forecast`` task and ``memzoo.apps``.

Shape legend: L series length, N forecast origins, H horizon, p autoregressive order.

Baselines: naive (the last value), seasonal naive (the value one season back) and an
autoregressive model fitted on the training part (statsmodels ``AutoReg``, order by AIC).
"""

from __future__ import annotations

import math

import numpy as np

from memzoo.errors import MemzooError


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


def fit_autoregression(train: np.ndarray, max_lags: int, fixed_order: int | None = None) -> np.ndarray:
    """An AR(p) model with a constant fitted by least squares (statsmodels ``AutoReg``) on the
    training part ``train`` ``[L_train]`` only: ``[c, a_1, ..., a_p]`` for
    ``y[t] = c + a_1 y[t-1] + ... + a_p y[t-p]``.

    The order p is ``fixed_order`` if given, else chosen by AIC among 0..``max_lags``
    (``ar_select_order``, every order compared on the same sample).
    """
    try:
        from statsmodels.tsa.ar_model import AutoReg, ar_select_order
    except ImportError:
        raise MemzooError(
            "the autoregressive baseline needs statsmodels: pip install 'memzoo[apps]'"
        ) from None
    train = np.asarray(train, dtype=np.float64)
    if fixed_order is None:
        max_lags = max(0, min(int(max_lags), len(train) // 2 - 1))
        selected = ar_select_order(train, maxlag=max_lags, ic="aic", trend="c")
        order = max(selected.ar_lags) if selected.ar_lags else 0
    else:
        order = int(fixed_order)
    params = np.asarray(AutoReg(train, lags=order, trend="c").fit().params, dtype=np.float64)
    return params  # [1 + p]: the constant, then the lag-1 .. lag-p coefficients


def ar_forecast(series: np.ndarray, origins: np.ndarray, horizon: int, params: np.ndarray) -> np.ndarray:
    """Forecasts ``[N, H]`` of an AR model ``params`` (from :func:`fit_autoregression`) from
    each origin: step 0 reads the ``p`` values before the origin, later steps feed the model's
    own forecasts back (recursive multi-step), so only values observed before the origin are used.
    """
    const, coefs = float(params[0]), np.asarray(params[1:], dtype=np.float64)  # [p], lag 1 first
    order = len(coefs)
    if order and np.min(origins) < order:
        raise ValueError(f"an AR({order}) forecast needs {order} values before every origin")
    history = series[origins[:, None] + np.arange(-order, 0)].astype(np.float64)  # [N, p], oldest first
    steps = []
    for _ in range(horizon):
        step = const + history[:, ::-1] @ coefs  # [N]
        steps.append(step)
        if order:
            history = np.concatenate([history[:, 1:], step[:, None]], axis=1)
    return np.stack(steps, axis=1) if steps else np.zeros((len(origins), 0))
