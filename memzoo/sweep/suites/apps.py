"""The ``apps`` suite: each application at the CPU scale of its example script
(``examples/*.py``, the same settings) with several kinds of memory (mostly recurrent,
attention and fast-weight: deltanet). Every run stores its metric next to the model-free
baselines of the same held-out data; the report's Applications section compares them."""

from __future__ import annotations

from dataclasses import dataclass, field

from memzoo.sweep.suites.registry import register_suite
from memzoo.train.config import RunConfig, validate_config

# Every run: one seed, no checkpoint, and a wall-time safety net (the budget is in epochs).
TRAIN = {"checkpoint": False, "seed": 0, "max_seconds": 300}
KINDS = ("lstm", "attention", "deltanet")  # recurrent, attention, fast-weight


@dataclass(frozen=True)
class Model:
    """One model of an application: ``blocks`` blocks of ``layer``, width ``d_model``;
    ``train`` overrides the application's training settings, ``options`` adds model keys."""

    layer: str
    blocks: int
    d_model: int
    train: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class App:
    """An application: its task, its training settings and the models it compares."""

    task: dict
    train: dict
    models: tuple[Model, ...]


def models(layers, blocks: int, d_model: int, **options) -> tuple[Model, ...]:
    return tuple(Model(layer, blocks, d_model, options=options) for layer in layers)


# 8x8 digits read pixel by pixel; per layer as examples/digits.py (deltanet as gru).
DIGITS = App(
    task={"name": "digits"},
    train={"num_train": 1438, "num_test": 359, "batch_size": 64, "target_accuracy": 1.0},
    models=(
        Model("gru", blocks=1, d_model=64, train={"epochs": 20, "lr": 1e-2}),
        Model("attention", blocks=2, d_model=64, train={"epochs": 12, "lr": 3e-3}),
        Model("deltanet", blocks=1, d_model=64, train={"epochs": 20, "lr": 1e-2}),
    ),
)
FORECAST_TRAIN = {"batch_size": 32, "lr": 3e-3, "weight_decay": 0.0, "num_test": 10_000}
SUNSPOTS = App(
    task={"name": "forecast", "series": "sunspots", "context_len": 16, "horizon": 1},
    train={**FORECAST_TRAIN, "epochs": 20, "num_train": 512},
    models=models(KINDS, 1, 32),
)
CO2 = App(
    task={"name": "forecast", "series": "co2", "context_len": 52, "horizon": 8, "relative": True},
    train={**FORECAST_TRAIN, "epochs": 8, "num_train": 2048},
    models=models(KINDS, 1, 32),
)
# Through ``memzoo.train`` a translate run's layers build the encoder and the decoder alike,
# and target_accuracy is the target chrF / 100; batch size and weight decay as `memzoo translate`.
TRANSLATE = App(
    task={"name": "translate", "seq_len": 16},
    train={
        "epochs": 12,
        "batch_size": 64,
        "lr": 3e-3,
        "weight_decay": 0.01,
        "num_train": 2000,
        "num_test": 300,
        "target_accuracy": 0.99,
    },
    models=models(KINDS, 1, 32, mlp_ratio=2),
)
TEXT = App(
    task={"name": "text_classify", "seq_len": 32},
    train={
        "epochs": 8,
        "batch_size": 32,
        "lr": 3e-3,
        "num_train": 2000,
        "num_test": 500,
        "target_accuracy": 0.995,
    },
    models=models(("attention_lstm", "lstm", "deltanet"), 1, 32, mlp_ratio=2),  # the seed's classifier first
)
# Speech (the seed's first application), settings of examples/speech.py. Isolated words
# against DTW nearest neighbour (stored by the task); connected digit strings with a CTC head
# against the ablation without memory beyond 4 frames (a sliding window of 4, 100 ms).
SPEECH_WORDS = App(
    task={"name": "speech_words"},
    train={"epochs": 12, "num_train": 2464, "num_validation": 192, "num_test": 256, "batch_size": 32},
    models=models(KINDS, 2, 64, mlp_ratio=2),
)
SPEECH_WINDOW_ABLATION = {"sliding_window": {"window": 4}}
SPEECH_DIGITS = App(
    task={"name": "speech_digits"},
    train={
        "epochs": 12,
        "num_train": 1200,
        "num_validation": 200,
        "num_test": 200,
        "batch_size": 32,
        "weight_decay": 0.0,
    },
    models=(
        Model("lstm", blocks=1, d_model=64, options={"mlp_ratio": 2}),
        Model("attention", blocks=2, d_model=64, options={"mlp_ratio": 2}),
        Model(  # the ablation
            "sliding_window",
            blocks=2,
            d_model=64,
            options={"mlp_ratio": 2, "layer_options": SPEECH_WINDOW_ABLATION},
        ),
    ),
)
RECOMMEND = App(
    task={"name": "recommend", "seq_len": 20},
    train={
        "epochs": 5,
        "num_train": 1000,
        "num_test": 1000,
        "batch_size": 64,
        "lr": 3e-3,
        "target_accuracy": 1.0,
    },
    models=models(KINDS, 1, 64),
)
# The longest runs (digits) first, so that two workers finish at about the same time.
APPS = (DIGITS, SUNSPOTS, CO2, TRANSLATE, TEXT, SPEECH_WORDS, SPEECH_DIGITS, RECOMMEND)


def app_run(app: App, model: Model) -> RunConfig:
    return validate_config(
        {
            "task": app.task,
            "model": {"layers": [model.layer] * model.blocks, "d_model": model.d_model, **model.options},
            "train": {**TRAIN, **app.train, **model.train},
        }
    )


@register_suite("apps")
def apps() -> list[RunConfig]:
    """The applications, 24 runs, each with a recurrent, an attention and a fast-weight
    (deltanet) model or, for speech digits, the 4-frame sliding-window ablation: 8x8 digits
    read pixel by pixel, forecasting of sunspots and of CO2, translation (encoder-decoders),
    text classification (the seed's attention_lstm), next-item recommendation, spoken words
    (against DTW nearest neighbour) and spoken digit strings (a CTC head; WER). Each run
    stores its task's baselines (the strongest: logistic regression on pixels, AR, TF-IDF +
    logistic regression, item-to-item Markov, DTW), and the report says where a model loses
    to them. The first speech run synthesises its corpus; later runs read it from the cache."""
    return [app_run(app, model) for app in APPS for model in app.models]
