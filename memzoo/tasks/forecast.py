"""``forecast``: windowed multi-step forecasting of a real series (regress head).

Shape legend: N windows, C ``context_len``, H ``horizon``, F input features, L series length.

The series (built in — ``sunspots``, ``co2`` — or a user CSV through ``path``/``column``) is cut
into a training part and a held-out tail of ``test_fraction`` of its length. Inputs are
normalised with the mean and standard deviation of the training part only, so nothing about
the tail leaks into training. A window reads ``C`` consecutive values ``[C, F]`` and predicts the
next ``H`` values of the first (target) column ``[H]``:

- training windows: every window whose targets lie inside the training part;
- test windows: every forecast origin in the tail (targets inside the tail; the context may
  reach back into the training part, which is the past and therefore allowed).

A run's ``mae``/``rmse`` are in standardised units; it also stores the naive, seasonal-naive
and autoregressive (AR, fitted on the training part) MAE of the same windows in those units
(:meth:`Forecast.baseline_metrics`).

>>> task = Forecast(series="sunspots", context_len=4, horizon=2)
>>> train, test = task.split(num_train=3, num_test=100, seed=0)
>>> tuple(train.inputs.shape), tuple(train.targets.shape), tuple(test.inputs.shape)
((3, 4, 1), (3, 2), (61, 4, 1))
>>> origins = task.origins("test")
>>> [round(v, 1) for v in task.to_units(test.targets[:1], origins[:1])[0].tolist()]  # 1947, 1948
[151.6, 136.3]
>>> task.prepared().train_len, task.season_length
(247, 11)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field, model_validator

from memzoo.data.series import BUILTIN_SEASONS, builtin_series, load_series
from memzoo.errors import ConfigError
from memzoo.metrics.forecasting import (
    ar_forecast,
    fit_autoregression,
    naive_forecast,
    seasonal_naive_forecast,
)
from memzoo.tasks._real_data import VALIDATION_FRACTION, check_count, draw
from memzoo.tasks.base import DataSplits, Task, TaskData
from memzoo.tasks.registry import register_task

BUILTIN = ("sunspots", "co2")


@dataclass(frozen=True)
class PreparedSeries:
    """A loaded series and its normalisation (fitted on ``values[:train_len]``).

    Attributes:
        values: raw values ``[L, F]`` (float64); column 0 is forecast.
        train_len: length of the training part; ``values[train_len:]`` is the held-out tail.
        mean, std: per-feature normalisation ``[F]``.
    """

    values: np.ndarray
    train_len: int
    mean: np.ndarray
    std: np.ndarray

    def normalised(self, values: np.ndarray | None = None) -> torch.Tensor:
        """``(values - mean) / std`` as float32 ``[L, F]`` (``values`` defaults to the series)."""
        values = self.values if values is None else values
        return torch.from_numpy((values - self.mean) / self.std).float()


@functools.lru_cache(maxsize=16)
def _load(series: str, path: str | None, columns: tuple[str, ...], time_column: str | None) -> np.ndarray:
    """The raw series ``[L, F]``, read once per parameter set."""

    if path is None:
        return builtin_series(series)[:, None]
    return load_series(path, list(columns), time_column).reshape(-1, len(columns))


@register_task("forecast")
class Forecast(Task):
    """Forecast the next ``horizon`` values of a real series from the last ``context_len``."""

    description: ClassVar[str] = (
        "forecast the next values of a real series (sunspots, co2, or a CSV) from a window"
    )
    head: ClassVar[str] = "regress"

    series: str = Field("sunspots", description="built-in series: sunspots or co2 (ignored when path is set)")
    path: str | None = Field(None, description="a CSV file to forecast instead of a built-in series")
    column: str | list[str] = Field("value", description="CSV value column(s); the first is forecast")
    time_column: str | None = Field(None, description="CSV column that orders the rows")
    context_len: int = Field(32, ge=1, description="values each window reads (C)")
    horizon: int = Field(1, ge=1, description="values each window predicts (H)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="held-out tail, as a fraction of the series")
    relative: bool = Field(
        False, description="read and predict values relative to each window's last value (trending series)"
    )
    season: int | None = Field(
        None, ge=1, description="season length of the seasonal-naive baseline (built-in default)"
    )
    seq_len: int = Field(32, ge=1, description="equals context_len (set context_len)")

    @model_validator(mode="before")
    @classmethod
    def _seq_len_is_context_len(cls, data: Any) -> Any:
        if isinstance(data, dict):
            context = data.get("context_len", cls.model_fields["context_len"].default)
            if "seq_len" in data and data["seq_len"] != context:
                raise ValueError("seq_len: a forecast window's length is set by context_len")
            data = {**data, "seq_len": context}
        return data

    @model_validator(mode="after")
    def _valid_source(self) -> Forecast:
        if self.path is None and self.series not in BUILTIN:
            raise ValueError(f"series must be one of {', '.join(BUILTIN)} (or set path); got {self.series!r}")
        if self.path is not None and "series" in self.model_fields_set:
            raise ValueError("set either series (a built-in series) or path (a CSV file), not both")
        if isinstance(self.column, list) and not self.column:
            raise ValueError("column must name at least one column")
        return self

    @property
    def input_dim(self) -> int:
        return 1 if isinstance(self.column, str) or self.path is None else len(self.column)

    @property
    def output_vocab_size(self) -> int:
        return self.horizon

    @property
    def season_length(self) -> int | None:
        """Season of the seasonal-naive baseline: ``season``, else the built-in series' own."""
        if self.season is not None:
            return self.season
        return BUILTIN_SEASONS[self.series] if self.path is None else None

    def prepared(self) -> PreparedSeries:
        """The series, its train/tail split and the training-part normalisation."""
        columns = (self.column,) if isinstance(self.column, str) else tuple(self.column)
        values = _load(self.series, self.path, columns, self.time_column)
        total = len(values)
        test_len = max(int(round(total * self.test_fraction)), 1)
        train_len = total - test_len
        if train_len < self.context_len + self.horizon:
            raise ConfigError(
                f"context_len={self.context_len} + horizon={self.horizon} does not fit the training "
                f"part ({train_len} of {total} values with test_fraction={self.test_fraction})"
            )
        if test_len < self.horizon:
            raise ConfigError(f"the held-out tail ({test_len} values) is shorter than horizon={self.horizon}")
        season = self.season_length
        if season is not None and season > train_len:
            raise ConfigError(f"season={season} is longer than the training part ({train_len} values)")
        mean = values[:train_len].mean(axis=0)
        std = values[:train_len].std(axis=0)
        std = np.where(std > 0, std, 1.0)  # a constant training part: only centre it
        return PreparedSeries(values, train_len, mean, std)

    def origins(self, part: str) -> np.ndarray:
        """Index of each window's first target value: ``"train"`` or ``"test"`` windows."""
        prep = self.prepared()
        if part == "train":
            return np.arange(self.context_len, prep.train_len - self.horizon + 1)
        return np.arange(prep.train_len, len(prep.values) - self.horizon + 1)

    def windows(self, origins: np.ndarray, values: np.ndarray | None = None) -> TaskData:
        """Windows at ``origins``: inputs ``[N, C, F]``, targets ``[N, H]`` (both normalised).

        ``values`` (raw ``[L, F]``, default: the task's series) lets evaluation code run the same
        windows over a modified copy of the series, e.g. one with injected anomalies.
        """
        series = self.prepared().normalised(values)  # [L, F]
        origins = torch.as_tensor(np.asarray(origins), dtype=torch.long)
        context = origins[:, None] + torch.arange(-self.context_len, 0)  # [N, C]
        ahead = origins[:, None] + torch.arange(self.horizon)  # [N, H]
        inputs, targets = series[context], series[ahead, 0]  # [N, C, F], [N, H]
        if self.relative:  # level-free windows: a trend carries past the training range
            last = series[origins - 1]  # [N, F]
            inputs, targets = inputs - last[:, None, :], targets - last[:, :1]
        return TaskData(inputs=inputs, targets=targets)

    def to_units(
        self, outputs: torch.Tensor, origins: np.ndarray, values: np.ndarray | None = None
    ) -> torch.Tensor:
        """Model outputs (or targets) ``[N, H]`` of windows at ``origins`` in the series' units:
        undo the offset of ``relative`` windows, then the normalisation."""
        prep = self.prepared()
        outputs = outputs.double()
        if self.relative:
            last = prep.normalised(values)[torch.as_tensor(np.asarray(origins)) - 1, 0].double()  # [N]
            outputs = outputs + last[:, None]
        return outputs * float(prep.std[0]) + float(prep.mean[0])

    def splits(self, num_train: int, num_validation: int, num_test: int, seed: int) -> DataSplits:
        """Training windows drawn from the training region without its last
        ``VALIDATION_FRACTION`` of origins, which give up to ``num_validation`` validation
        windows in time order (the future of what is trained on, as the test tail is); then
        the first ``num_test`` tail windows."""
        check_count("num_train", num_train)
        check_count("num_test", num_test)
        origins = self.origins("train")
        if len(origins) < 2:
            raise ConfigError(f"the training part holds {len(origins)} window(s); at least 2 are needed")
        cut = len(origins) - min(max(1, round(len(origins) * VALIDATION_FRACTION)), len(origins) - 1)
        train_origins, validation_origins = origins[:cut], origins[cut:]
        picked = draw(len(train_origins), num_train, torch.Generator().manual_seed(seed))
        return DataSplits(
            self.windows(train_origins[picked.numpy()]),
            self.windows(validation_origins[:num_validation]),
            self.windows(self.origins("test")[:num_test]),
        )

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """``num_train`` training windows (whole shuffled passes over them, see
        ``memzoo.tasks._real_data``) and the first ``num_test`` tail windows in time order."""
        check_count("num_train", num_train)
        check_count("num_test", num_test)
        train_origins = self.origins("train")
        picked = draw(len(train_origins), num_train, torch.Generator().manual_seed(seed))
        test_origins = self.origins("test")[:num_test]
        return self.windows(train_origins[picked.numpy()]), self.windows(test_origins)

    def generate(self, num_examples: int, seed: int) -> TaskData:
        """``num_examples`` training windows drawn with ``seed`` (the tail is never drawn)."""
        return self.split(num_examples, 0, seed)[0]

    def ar_max_lags(self) -> int:
        """Largest order the AR baseline's AIC may pick: the window the model reads
        (``context_len``) or one season and a value, whichever is longer."""
        return max(self.context_len, (self.season_length or 0) + 1)

    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        """MAE of the naive (last value), seasonal-naive and autoregressive forecasts of the
        held-out windows ``test`` (the first ``len(test)`` tail windows, as the trainer scores
        them).

        The AR model (``memzoo.metrics.forecasting.fit_autoregression``: statsmodels
        ``AutoReg`` with a constant, order by AIC up to :meth:`ar_max_lags`, stored as
        ``ar_order``) is fitted once on the series' training part, before the tail; each test
        window is forecast from the values before its origin with the fitted coefficients.

        In the units of the run's ``mae``: the series standardised by its training part, so
        the numbers compare directly; ``series_std`` (the training part's standard deviation)
        converts any of them to the series' units. ``seasonal_naive_mae`` is left out when
        the series has no season.
        """
        prep = self.prepared()
        series = prep.values[:, 0]  # [L]
        origins = self.origins("test")[: len(test)]  # [N]
        actual = series[origins[:, None] + np.arange(self.horizon)]  # [N, H]
        scale = float(prep.std[0])

        def mae(forecast: np.ndarray) -> float:
            return float(np.abs(forecast - actual).mean()) / scale

        params = fit_autoregression(series[: prep.train_len], self.ar_max_lags())
        out = {
            "naive_mae": mae(naive_forecast(series, origins, self.horizon)),
            "ar_mae": mae(ar_forecast(series, origins, self.horizon, params)),
            "ar_order": len(params) - 1,
            "series_std": scale,
        }
        if self.season_length is not None:
            out["seasonal_naive_mae"] = mae(
                seasonal_naive_forecast(series, origins, self.horizon, self.season_length)
            )
        return out
