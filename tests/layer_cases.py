"""Per-layer options used by the registry-wide tests (small, fast settings).

A layer that is not listed here is tested with its defaults.
"""

LAYER_TEST_KWARGS: dict[str, dict] = {
    "rnn": {},
    "lstm": {},
    "gru": {},
    "sliding_window": {"window": 5},  # smaller than the test sequences, so the band bites
    "attention_lstm": {"score": "additive"},  # "attention" runs the default "dot" score
}


def kwargs_for(name: str) -> dict:
    return dict(LAYER_TEST_KWARGS.get(name, {}))
