"""Generation speed rows (``memzoo.speed.generation``) at tiny sizes.

Speed is measured, never asserted: these tests check the rows, not how fast anything runs."""

from __future__ import annotations

import pytest

import memzoo
from memzoo import layers as layer_registry
from memzoo.speed.generation import generation_rows


def test_rows_per_layer_with_decode_speed_and_state_bytes():
    layers = ["attention", "gru", "sliding_window"]
    rows = generation_rows(
        layers,
        16,
        prompt_len=8,
        new_tokens=4,
        batch_size=2,
        repeats=2,
        layer_options={"sliding_window": {"window": 3}},
    )
    assert [r["layer"] for r in rows] == layers
    for r in rows:
        assert (
            r["mode"] == "generate"
            and r["seq_len"] == 8
            and r["extra"]["new_tokens"] == 4
            and r["extra"]["batch_size"] == 2
        )
        assert r["tokens_per_s"] > 0 and r["extra"]["prefill_tokens_per_s"] > 0
        assert r["extra"]["decode_seconds"] > 0 and r["extra"]["repeats"] == 2
    by = {r["layer"]: r for r in rows}
    # the state one sequence holds after prompt + new tokens: attention's cache of 12 tokens
    assert by["attention"]["state_bytes"] == layer_registry.build("attention", 16).state_size(12)
    assert by["sliding_window"]["state_bytes"] == layer_registry.build(
        "sliding_window", 16, window=3
    ).state_size(12)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"layers": ["atention"]}, "unknown layer"),
        ({"new_tokens": 0}, "new_tokens"),
        ({"prompt_len": 0}, "prompt_len"),
        ({"repeats": 0}, "repeats"),
        ({"batch_size": True}, "batch_size"),
        ({"warmup": -1}, "warmup"),
    ],
)
def test_bad_settings_are_config_errors(kwargs, match):
    args = {"layers": ["gru"], "d_model": 8, "prompt_len": 4, "new_tokens": 2, "repeats": 1, **kwargs}
    with pytest.raises(memzoo.ConfigError, match=match):
        generation_rows(**args)
