"""Application-level evaluation of trained models: forecasting against naive baselines,
anomaly detection from forecast errors, recommendation against popularity.

Each ``evaluate_*`` function takes a trained model (``memzoo.fit(config).model``) and the task
it was trained on, and returns a flat dict of metrics, the model's next to its baseline's.
"""

from memzoo.apps.anomaly import evaluate_anomalies, inject_anomalies
from memzoo.apps.forecasting import evaluate_forecast, predict
from memzoo.apps.recommend import evaluate_recommendations

__all__ = [
    "evaluate_anomalies",
    "evaluate_forecast",
    "evaluate_recommendations",
    "inject_anomalies",
    "predict",
]
