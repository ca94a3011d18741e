"""Forecast real series and detect anomalies from forecast errors (about a minute on a CPU).

1. Yearly sunspots (1700-2008): an LSTM reads 16 years and forecasts the next one; MAE/RMSE on
   the held-out last 62 years against naive (last value) and seasonal naive (11 years back).
2. Weekly CO2 at Mauna Loa (1958-2001): relative windows (the series trends past its training
   range), 52 weeks in, the next 8 weeks out; held-out last 457 weeks.
3. Anomalies: spikes and level shifts injected into the CO2 tail at known positions, found
   from the CO2 model's standardised one-step residuals; precision and recall.

Run: ``python examples/forecast.py`` (``--layer gru`` etc. to try another memory layer).
"""

from __future__ import annotations

import argparse
import time

import memzoo
from memzoo.apps import evaluate_anomalies, evaluate_forecast

RUNS = {
    "sunspots": (
        {"name": "forecast", "series": "sunspots", "context_len": 16, "horizon": 1},
        {"epochs": 20, "num_train": 512, "lr": 3e-3},
    ),
    "co2": (
        {"name": "forecast", "series": "co2", "context_len": 52, "horizon": 8, "relative": True},
        {"epochs": 8, "num_train": 2048, "lr": 3e-3},
    ),
}


def train(task: dict, train: dict, layer: str, seed: int):
    config = {
        "task": task,
        "model": {"layers": [layer], "d_model": 32},
        "train": {
            **train,
            "batch_size": 32,
            "weight_decay": 0.0,
            "num_test": 10_000,
            "checkpoint": False,
            "seed": seed,
        },
    }
    result = memzoo.fit(config)
    task_params = {key: value for key, value in task.items() if key != "name"}
    return result.model, memzoo.tasks.build("forecast", **task_params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="lstm", help="memory layer (see `memzoo layers`)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(
        f"{'series':<9} {'horizon':>7} {'windows':>7} {'model MAE':>10} {'naive':>8} {'seasonal':>9} "
        f"{'model RMSE':>11} {'naive':>8} {'seasonal':>9} {'seconds':>8}"
    )
    models = {}
    for name, (task, train_settings) in RUNS.items():
        start = time.perf_counter()
        model, task_obj = train(task, train_settings, args.layer, args.seed)
        models[name] = (model, task_obj)
        m = evaluate_forecast(model, task_obj)
        print(
            f"{name:<9} {m['horizon']:>7} {m['num_windows']:>7} {m['mae']:>10.3f} {m['naive_mae']:>8.3f} "
            f"{m['seasonal_naive_mae']:>9.3f} {m['rmse']:>11.3f} {m['naive_rmse']:>8.3f} "
            f"{m['seasonal_naive_rmse']:>9.3f} {time.perf_counter() - start:>8.1f}"
        )
    print("(sunspots: mean sunspot number, season 11 years; co2: ppm, season 52 weeks)")

    model, task_obj = models["co2"]
    print("\nanomalies injected into the CO2 tail (3 spikes, 3 level shifts of 6 typical weekly steps)")
    print(f"{'threshold |z|':>13} {'precision':>9} {'recall':>6} {'flagged':>7}")
    for threshold in (3.0, 4.0, 5.0):
        a = evaluate_anomalies(
            model, task_obj, num_anomalies=6, magnitude=6.0, threshold=threshold, seed=args.seed
        )
        print(f"{threshold:>13.1f} {a['precision']:>9.2f} {a['recall']:>6.2f} {a['num_flagged']:>7}")
    print(f"injected at weeks {a['positions']} (index into the series); a flag up to 2 weeks")
    print("after an anomaly counts as finding it")


if __name__ == "__main__":
    main()
