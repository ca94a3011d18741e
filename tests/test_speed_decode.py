"""The decode-step reference of ``memzoo speed`` (a preallocated KV buffer): it does the same
math as memzoo's attention step, and the step rows carry its latency and the ratio.

Speed is measured, never asserted: only the rows' shape and the reference's outputs are."""

from __future__ import annotations

import pytest
import torch

from memzoo import layers as layer_registry
from memzoo.speed import run as speed_run
from memzoo.speed.references import decode_reference_for
from memzoo.speed.run import SpeedSettings, run_speed


@pytest.mark.parametrize("rope", [True, False])
@pytest.mark.parametrize("prefix", [0, 5])
def test_preallocated_reference_step_equals_attention_step(rope, prefix):
    torch.manual_seed(0)
    layer = layer_registry.build("attention", 16, num_heads=4, rope=rope)
    label, reference = decode_reference_for("attention", 16, {"num_heads": 4, "rope": rope})
    assert label == "preallocated KV buffer"
    reference.qkv.load_state_dict(layer.qkv.state_dict())
    reference.out.load_state_dict(layer.out.state_dict())
    x = torch.randn(2, 12, 16)  # [B, T, D]
    with torch.no_grad():
        whole, _ = layer(x)
        state = layer.init_state(2)
        buffer = reference.allocate(2, capacity=12)
        if prefix:
            _, state = layer(x[:, :prefix], state)
            buffer.k[:, :, :prefix], buffer.v[:, :, :prefix] = state.k, state.v
            buffer.length = prefix
        for t in range(prefix, 12):  # positions prefix .. 11, one token at a time
            y, state = layer(x[:, t : t + 1], state)
            y_ref = reference.step(x[:, t : t + 1], buffer)
            assert buffer.length == t + 1
            torch.testing.assert_close(y_ref, y, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(y_ref[:, 0], whole[:, t], atol=1e-5, rtol=1e-5)


def test_only_dot_attention_has_a_decode_reference():
    assert decode_reference_for("attention", 16, {"score": "cosine"}) is None
    for name in ("persistent", "sliding_window", "attention_lstm", "gru", "deltanet"):
        assert decode_reference_for(name, 16, {}) is None


def test_attention_step_rows_carry_the_reference_latency_and_ratio(monkeypatch):
    monkeypatch.setattr(speed_run, "matmul_peak_flops", lambda device: 1e10)  # seconds of 4096^3 matmuls
    lines: list[str] = []
    settings = SpeedSettings(
        layers=["attention", "gru"],
        seq_lens=[16],
        batch_size=2,
        d_model=16,
        decode_positions=[1, 8],
        modes=["step"],
        repeats=1,
        warmup=1,
    )
    rows = run_speed(settings, progress=lines.append)
    by = {(r["layer"], r["seq_len"]): r for r in rows}
    assert set(by) == {("attention", 1), ("attention", 8), ("gru", 1), ("gru", 8)}
    for position in (1, 8):
        row = by[("attention", position)]
        assert row["mode"] == "step" and row["ratio_vs_reference"] > 0
        assert row["extra"]["reference"] == "preallocated KV buffer"
        assert row["extra"]["reference_latency_ms"] > 0 and row["extra"]["latency_ms"] > 0
        assert row["ratio_vs_reference"] == pytest.approx(
            row["extra"]["reference_latency_ms"] / row["extra"]["latency_ms"]
        )
        assert "vs_first_position" in row["extra"]
        assert by[("gru", position)]["ratio_vs_reference"] is None
    # the progress output shows every step row: latency per position, and the ratio
    step_lines = [line for line in lines if " step: " in line]
    assert len(step_lines) == 4
    assert any("attention pos=8 step" in line and "x preallocated KV buffer" in line for line in step_lines)
    assert all(" ms" in line for line in step_lines)
