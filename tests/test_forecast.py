"""The forecast task and its evaluation: windows without leaks, train-only normalisation,
baselines computed right, a model that beats seasonal naive on the sunspots hold-out, and
anomaly detection that finds injected spikes and level shifts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import memzoo
from memzoo import tasks
from memzoo.apps.anomaly import anomaly_scores, evaluate_anomalies, inject_anomalies
from memzoo.apps.forecasting import evaluate_forecast, naive_forecast, seasonal_naive_forecast
from memzoo.errors import ConfigError

# Training settings that reach the figures below in a few seconds on one CPU core.
SUNSPOTS = {"name": "forecast", "series": "sunspots", "context_len": 16, "horizon": 1}
TRAIN = {
    "epochs": 20,
    "num_train": 512,
    "num_test": 1000,
    "batch_size": 32,
    "lr": 3e-3,
    "weight_decay": 0.0,
    "checkpoint": False,
    "seed": 0,
}


def write_series(tmp_path, values, name="series.csv"):
    path = tmp_path / name
    path.write_text("t,y\n" + "".join(f"{i},{float(v)!r}\n" for i, v in enumerate(values)))
    return str(path)


# ---- the task --------------------------------------------------------------------------------


def test_windows_never_read_the_tail_in_training_and_cover_it_in_testing():
    task = tasks.build("forecast", context_len=8, horizon=3)
    prep = task.prepared()
    train_origins, test_origins = task.origins("train"), task.origins("test")
    assert train_origins.max() + task.horizon <= prep.train_len  # targets stay before the tail
    assert test_origins.tolist() == list(range(prep.train_len, len(prep.values) - 2))
    train, test = task.split(num_train=1000, num_test=10_000, seed=1)
    assert train.inputs.shape == (1000, 8, 1) and train.targets.shape == (1000, 3)
    assert len(test) == len(test_origins) and train.inputs.dtype == torch.float32
    # 1000 draws from a smaller pool: whole passes, so every window appears 4 or 5 times.
    pool = len(train_origins)
    _, counts = torch.unique(train.inputs.flatten(1), dim=0, return_counts=True)
    assert set(counts.tolist()) <= {1000 // pool, 1000 // pool + 1}
    back = task.to_units(test.targets, test_origins)
    assert np.allclose(back.numpy(), prep.values[test_origins[:, None] + np.arange(3), 0], atol=1e-3)


def test_normalisation_is_fitted_on_the_training_part_only(tmp_path):
    rng = np.random.default_rng(0)
    series = rng.normal(10, 2, size=200)
    wild_tail = series.copy()
    wild_tail[160:] *= 100  # only the held-out tail differs
    a = tasks.build("forecast", path=write_series(tmp_path, series, "a.csv"), column="y", context_len=8)
    b = tasks.build("forecast", path=write_series(tmp_path, wild_tail, "b.csv"), column="y", context_len=8)
    assert a.prepared().train_len == 160
    assert np.allclose(a.prepared().mean, series[:160].mean()) and np.allclose(
        a.prepared().std, series[:160].std()
    )
    train_a, _ = a.split(64, 0, seed=3)
    train_b, _ = b.split(64, 0, seed=3)
    assert torch.equal(train_a.inputs, train_b.inputs) and torch.equal(train_a.targets, train_b.targets)


def test_relative_windows_are_level_free_and_round_trip(tmp_path):
    ramp = np.arange(100, dtype=float) * 3 + 7
    task = tasks.build(
        "forecast", path=write_series(tmp_path, ramp), column="y", context_len=5, horizon=2, relative=True
    )
    origins = task.origins("test")
    data = task.windows(origins)
    assert torch.allclose(
        data.inputs, data.inputs[:1].expand_as(data.inputs), atol=1e-5
    )  # same shape everywhere
    assert np.allclose(task.to_units(data.targets, origins).numpy(), ramp[origins[:, None] + np.arange(2)])


def test_forecast_parameter_errors(tmp_path):
    with pytest.raises(ConfigError, match="series must be one of sunspots, co2"):
        tasks.build("forecast", series="airline")
    with pytest.raises(ConfigError, match="either series .* or path"):
        tasks.build("forecast", series="co2", path=write_series(tmp_path, [1.0, 2.0]))
    with pytest.raises(ConfigError, match="seq_len: a forecast window's length is set by context_len"):
        tasks.build("forecast", seq_len=10, context_len=12)
    assert tasks.build("forecast", context_len=12).seq_len == 12
    with pytest.raises(ConfigError, match="context_len=300 .* does not fit the training part"):
        tasks.build("forecast", context_len=300).prepared()


# ---- baselines -----------------------------------------------------------------------------


def test_naive_baselines_on_known_series():
    season = 4
    periodic = np.tile([1.0, 5.0, 2.0, 8.0], 10)
    origins = np.arange(12, 30)
    expected = periodic[origins[:, None] + np.arange(6)]
    assert np.array_equal(seasonal_naive_forecast(periodic, origins, 6, season), expected)
    ramp = np.arange(40.0)
    forecast = naive_forecast(ramp, origins, 3)
    assert np.array_equal(forecast, np.repeat(ramp[origins - 1][:, None], 3, axis=1))
    # Step j of the seasonal forecast only uses values observed before the origin.
    seasonal = seasonal_naive_forecast(ramp, origins, 9, season)
    assert (seasonal < origins[:, None]).all()


# ---- learning on the sunspots hold-out -----------------------------------------------------


@pytest.fixture(scope="module")
def sunspots_model():
    torch.manual_seed(0)
    result = memzoo.fit({"task": SUNSPOTS, "model": {"layers": ["lstm"], "d_model": 32}, "train": TRAIN})
    return result.model, tasks.build(**SUNSPOTS)


@pytest.mark.slow
def test_lstm_beats_seasonal_naive_on_sunspots(sunspots_model):
    model, task = sunspots_model
    metrics = evaluate_forecast(model, task)
    assert metrics["num_windows"] == 62 and metrics["season"] == 11
    # Measured: MAE ~15 sunspots against 27.9 (seasonal naive) and 25.4 (naive).
    assert metrics["mae"] < 0.8 * metrics["seasonal_naive_mae"]
    assert metrics["mae"] < metrics["naive_mae"] and metrics["rmse"] < metrics["seasonal_naive_rmse"]


# ---- anomalies -----------------------------------------------------------------------------


def test_injected_anomalies_are_where_they_say():
    series = np.zeros((300, 2))
    corrupted, positions, kinds = inject_anomalies(
        series, start=100, stop=300, num=4, size=5.0, seed=1, min_gap=40
    )
    assert kinds == ["spike", "level_shift", "spike", "level_shift"]
    assert (positions >= 100).all() and (positions < 300).all() and (np.diff(positions) >= 40).all()
    assert (corrupted[:, 1] == 0).all() and (corrupted[:100, 0] == 0).all()
    steps = np.flatnonzero(np.diff(np.concatenate([[0.0], corrupted[:, 0]])))
    assert set(positions.tolist()) <= set(steps.tolist())
    with pytest.raises(ConfigError, match="do not fit"):
        inject_anomalies(series, start=100, stop=300, num=6, size=1.0, seed=0, min_gap=40)


@pytest.mark.slow
def test_anomaly_detection_finds_anomalies_injected_into_co2():
    # Weekly CO2 with its trend: relative windows; one-step forecasts score every tail week.
    task_params = {"name": "forecast", "series": "co2", "context_len": 52, "horizon": 1, "relative": True}
    torch.manual_seed(0)
    result = memzoo.fit(
        {
            "task": task_params,
            "model": {"layers": ["lstm"], "d_model": 32},
            "train": {**TRAIN, "epochs": 6, "num_train": 1024},
        }
    )
    task = tasks.build(**task_params)
    forecast = evaluate_forecast(result.model, task)
    assert forecast["mae"] < forecast["seasonal_naive_mae"]  # measured: 0.39 ppm against 1.65
    # Six anomalies (3 spikes, 3 level shifts) of 6 typical weekly steps, flagged at |z| > 4.
    # Measured: precision 1.0, recall 1.0 (9 flags: each spike and the week after it, each shift).
    metrics = evaluate_anomalies(result.model, task, num_anomalies=6, magnitude=6.0, threshold=4.0)
    assert metrics["recall"] >= 0.8 and metrics["precision"] >= 0.75, metrics
    # Without anomalies almost nothing in the clean tail is flagged.
    _, z = anomaly_scores(result.model, task, task.prepared().values)
    assert (np.abs(z) > 4.0).mean() < 0.02
