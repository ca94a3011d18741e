"""``memzoo speed``: the rows it emits and stores, the FLOP count behind MFU, bad options.

Speed itself is measured, never asserted: these tests check the shape of the output on
tiny settings (T 16, d_model 16), not how fast anything runs."""

from __future__ import annotations

import json

import pytest
import torch

from memzoo import layers as layer_registry
from memzoo.results.store import ResultsStore
from memzoo.speed.timing import count_flops, forward_backward, forward_only
from tests.test_cli import run_main

TINY = ["--seq-lens", "16,32", "--batch-size", "2", "--d-model", "16", "--positions", "1,8", "--repeats", "1"]


def test_speed_json_rows_cover_every_mode_with_references(monkeypatch, capsys, tmp_path):
    db = tmp_path / "speed.db"
    code, out, err = run_main(
        monkeypatch, capsys, ["speed", "--layers", "attention,gru,deltanet", *TINY, "--db", str(db), "--json"]
    )
    assert code in (0, None), err
    rows = [json.loads(line) for line in out.splitlines()]
    keys = {"layer", "seq_len", "mode", "tokens_per_s", "ratio_vs_reference", "state_bytes", "mfu"}
    assert all(keys <= set(r) for r in rows)
    by = {(r["layer"], r["mode"], r["seq_len"]): r for r in rows}
    for layer, reference in [
        ("attention", "sdpa"),
        ("gru", "torch.nn.GRU"),
        ("deltanet", "naive recurrence"),
    ]:
        for mode in ("fwd", "fwdbwd"):
            for seq_len in (16, 32):
                row = by[(layer, mode, seq_len)]
                assert row["tokens_per_s"] > 0 and row["ratio_vs_reference"] > 0
                assert row["extra"]["reference"] == reference
        steps = [by[(layer, "step", p)] for p in (1, 8)]
        assert steps[0]["extra"]["vs_first_position"] == 1.0
        assert all(s["extra"]["latency_ms"] > 0 for s in steps)
    # State bytes: attention's cache grows with the position, deltanet's memory does not.
    assert by[("attention", "step", 8)]["state_bytes"] == 8 * by[("attention", "step", 1)]["state_bytes"]
    assert by[("deltanet", "step", 8)]["state_bytes"] == by[("deltanet", "step", 1)]["state_bytes"]
    assert 0 < by[("deltanet", "fwdbwd", 32)]["mfu"]
    assert len(ResultsStore(str(db)).speed_rows()) == len(rows)
    # The fast-weight op alone, chunked against its naive recurrence; no op rows elsewhere.
    for mode in ("fwd", "fwdbwd"):
        op = by[("deltanet/op", mode, 32)]
        assert op["extra"]["reference"] == "naive recurrence (op)" and op["ratio_vs_reference"] > 0
    assert not any(r["layer"] in ("attention/op", "gru/op") for r in rows)


def test_backward_flops_are_about_twice_the_forward():
    """MFU once read above 100%: torch's FLOP counter charged a depthwise convolution's
    backward as a dense one. Every fast-weight layer's fwd+bwd count must stay near 3x fwd."""
    x = torch.randn(2, 64, 32)
    for name in ("linear_attention", "deltanet", "gated_deltanet", "mlstm", "attention"):
        layer = layer_registry.build(name, 32)
        forward = count_flops(lambda: forward_only(layer, x))
        both = count_flops(lambda: forward_backward(layer, x))
        assert forward > 0
        assert 2 * forward <= both <= 4 * forward, (name, forward, both)


def test_bad_speed_options_exit_2_naming_the_option(monkeypatch, capsys):
    code, _, err = run_main(monkeypatch, capsys, ["speed", "--modes", "fwd,backward", "--no-store"])
    assert code == 2 and "--modes" in err and "fwdbwd" in err
    code, _, err = run_main(monkeypatch, capsys, ["speed", "--seq-lens", "16,x", "--no-store"])
    assert code == 2 and "--seq-lens" in err
    code, _, err = run_main(monkeypatch, capsys, ["speed", "--layers", "nope", "--no-store"])
    assert code == 2 and "nope" in err


def test_train_step_rows_time_a_whole_training_step_with_mfu(monkeypatch, capsys, tmp_path):
    code, out, err = run_main(
        monkeypatch,
        capsys,
        [
            "speed",
            "--layers",
            "attention,gru",
            "--modes",
            "train_step",
            "--seq-lens",
            "16",
            "--d-model",
            "16",
            "--batch-size",
            "2",
            "--repeats",
            "1",
            "--no-store",
            "--json",
        ],
    )
    assert code in (0, None), err
    rows = [json.loads(line) for line in out.splitlines()]
    assert {(r["layer"], r["mode"], r["seq_len"]) for r in rows} == {
        ("attention", "train_step", 16),
        ("gru", "train_step", 16),
    }
    for row in rows:
        assert row["tokens_per_s"] > 0 and 0 < row["mfu"] and row["extra"]["flops"] > 0


def test_neural_memory_is_compared_with_titans_pytorch_only_when_it_is_installed(monkeypatch):
    import importlib.util
    import sys
    import types

    from memzoo.speed import references

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "titans_pytorch" else real_find_spec(n, *a)
    )
    assert references.reference_for("neural_memory", 64, {}) is None

    built = {}
    fake = types.ModuleType("titans_pytorch")
    fake.NeuralMemory = lambda **kwargs: built.update(kwargs) or torch.nn.Identity()
    monkeypatch.setitem(sys.modules, "titans_pytorch", fake)
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object())
    label, _ = references.reference_for("neural_memory", 64, {"chunk_size": 8, "hidden_mult": 2})
    assert label == "titans-pytorch NeuralMemory"
    assert built == {
        "dim": 64,
        "chunk_size": 8,
        "heads": 4,
        "dim_head": 16,
        "default_model_kwargs": {"depth": 2, "expansion_factor": 2.0},
    }


def test_speed_layer_options_are_parsed_and_checked():
    from memzoo.cli.speed_cmd import _layer_options
    from memzoo.errors import ConfigError

    opts = _layer_options(["neural_memory.chunk_size=64", "neural_memory.hidden_mult=2"], ["neural_memory"])
    assert opts == {"neural_memory": {"chunk_size": 64, "hidden_mult": 2}}
    for bad, needle in (
        ("neural_memory.chunk=64", "takes chunk_size"),
        ("attention.num_heads=2", "not in --layers"),
        ("chunk_size=64", "LAYER.KEY=VALUE"),
    ):
        with pytest.raises(ConfigError, match=needle):
            _layer_options([bad], ["neural_memory"])
