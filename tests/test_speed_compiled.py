"""Mode ``train_step_compiled`` of ``memzoo speed``: the trainer's compiled step against the
eager one, on a tiny model. Speed is measured, never asserted: only the row's shape is."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from memzoo.speed.run import DEFAULT_MODES, MODES, SpeedSettings
from memzoo.speed.train_step import compiled_train_step_rows


@functools.lru_cache(maxsize=1)
def compile_error() -> str | None:
    """Why torch.compile cannot run here (no C++ compiler, unsupported Python), or None."""
    try:
        torch.compile(lambda t: t * 2 + 1)(torch.ones(3))
    except Exception as err:  # whatever stops inductor: the test is skipped, not failed
        return f"{type(err).__name__}: {err}".splitlines()[0]
    return None


def test_compiled_mode_is_offered_but_not_a_default():
    assert "train_step_compiled" in MODES and "train_step_compiled" not in DEFAULT_MODES
    assert "train_step_compiled" not in SpeedSettings(layers=["gru"]).modes


def test_compiled_train_step_row_compares_with_eager():
    if compile_error():
        pytest.skip(f"torch.compile unavailable: {compile_error()}")
    settings = SpeedSettings(layers=["attention"], seq_lens=[16], batch_size=2, d_model=16, repeats=1)
    errors: list[str] = []
    rows = list(compiled_train_step_rows("attention", settings, torch.device("cpu"), 1e10, errors.append))
    assert not errors
    (row,) = rows
    assert row["mode"] == "train_step_compiled" and row["seq_len"] == 16
    assert math.isfinite(row["ratio_vs_reference"]) and row["ratio_vs_reference"] > 0
    assert row["extra"]["reference"] == "eager" and row["extra"]["flops"] > 0
    assert row["tokens_per_s"] > 0 and row["mfu"] > 0
    assert row["extra"]["reference_tokens_per_s"] == pytest.approx(
        row["tokens_per_s"] / row["ratio_vs_reference"]
    )


def test_a_failed_compile_is_reported_and_gives_no_row(monkeypatch):
    def broken(fn, *args, **kwargs):
        def call(*a, **k):
            raise RuntimeError("no C++ compiler\nsecond line")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    settings = SpeedSettings(layers=["gru"], seq_lens=[16], batch_size=2, d_model=16, repeats=1)
    errors: list[str] = []
    assert list(compiled_train_step_rows("gru", settings, torch.device("cpu"), 1e10, errors.append)) == []
    assert len(errors) == 1 and "torch.compile failed" in errors[0] and "no C++ compiler" in errors[0]
