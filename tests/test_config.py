"""Run configs: defaults, overrides, files, and errors that name the field."""

from __future__ import annotations

import json

import pytest

from memzoo.errors import ConfigError
from memzoo.train.config import apply_overrides, build_config, load_config_file, parse_value, validate_config


def test_defaults_validate():
    cfg = build_config()
    assert cfg.task.name == "mqar" and cfg.model.layers == ["attention", "attention"]


def test_dotted_overrides_parse_types():
    cfg = build_config(
        overrides=[
            "task.seq_len=128",
            "task.vocab_size=512",
            "model.d_model=32",
            "model.layers=[attention,lstm]",
            "train.lr=1e-3",
            "train.checkpoint=false",
        ]
    )
    assert cfg.task.params()["seq_len"] == 128
    assert cfg.model.layers == ["attention", "lstm"]
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.train.checkpoint is False


@pytest.mark.parametrize(
    "override,needle",
    [
        ("train.lrr=0.1", "train.lrr"),
        ("model.d_model=-4", "model.d_model"),
        ("model.layers=[attention,lstmm]", "lstmm"),
        ("task.seq_len=abc", "seq_len"),
        ("task.bogus=3", "bogus"),
        ("task.name=nope", "nope"),
        ("foo.bar=1", "foo"),
        ("train.device=tpu", "train.device"),
        ("model.layer_options={gru: {window: 3}}", "layer_options"),
        ("model.layer_options={attention: {wndow: 3}}", "wndow"),
        ("noequals", "key=value"),
    ],
)
def test_bad_overrides_name_the_field(override, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        build_config(overrides=[override])
    assert "\n" not in str(info.value)


def test_impossible_task_parameters_are_rejected():
    with pytest.raises(ConfigError, match="num_kv_pairs"):
        build_config(overrides=["task.seq_len=16", "task.num_kv_pairs=8", "task.vocab_size=64"])


def test_config_file_yaml_and_json(tmp_path):
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text(
        "task: {name: mqar, seq_len: 64, vocab_size: 128, num_kv_pairs: 4}\nmodel: {d_model: 16}\n"
    )
    cfg = build_config(load_config_file(yaml_file), ["model.d_model=24"])
    assert cfg.model.d_model == 24 and cfg.task.params()["seq_len"] == 64
    json_file = tmp_path / "run.json"
    json_file.write_text(json.dumps(cfg.model_dump(mode="json")))
    assert build_config(load_config_file(json_file)) == cfg


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config_file(bad)


def test_parse_value_and_apply_overrides_do_not_mutate():
    assert parse_value("3") == 3 and parse_value("1e-3") == 1e-3 and parse_value("[a, b]") == ["a", "b"]
    base = {"train": {"lr": 0.1}}
    out = apply_overrides(base, ["train.lr=0.2"])
    assert base["train"]["lr"] == 0.1 and out["train"]["lr"] == 0.2


def test_memory_reset_ablation_is_refused_where_it_would_reset_nothing():
    base = {"task": {"name": "mqar"}, "model": {"reset_long_term_memory": True}}
    with pytest.raises(ConfigError, match="set train.segment_len"):
        validate_config({**base, "model": {**base["model"], "layers": ["neural_memory"]}})
    with pytest.raises(ConfigError, match="none of model.layers"):
        validate_config({**base, "train": {"segment_len": 16}})
    ok = validate_config(
        {**base, "model": {**base["model"], "layers": ["neural_memory"]}, "train": {"segment_len": 16}}
    )
    assert ok.model.reset_long_term_memory
