"""The ``real`` suite: every real task x six memories x two seeds, each config valid, budgets in
steps, one learning rate per task; and two of its runs, cut short, go through the benchmark's
job runner into a store whose report draws the context curve and the needle heatmap."""

from __future__ import annotations

from collections import defaultdict

import pytest

from memzoo.report.data import ReportData
from memzoo.report.real import real_sequences
from memzoo.results.store import ResultsStore
from memzoo.sweep.jobs import Job, run_job
from memzoo.sweep.suites import suite_configs, suite_names
from memzoo.sweep.suites.real import MODELS, SEEDS
from memzoo.train.config import validate_config
from memzoo.train.sizes import check_memory

TASKS = {"text_lm", "needle_text", "series_classify", "chorales"}


def _setting(cfg) -> str:
    return cfg.task.model_dump_json()


def test_suite_is_every_task_by_every_memory_by_two_seeds_with_step_budgets():
    assert "real" in suite_names()
    configs = suite_configs("real")
    assert {c.task.name for c in configs} == TASKS
    by_setting = defaultdict(list)
    for cfg in configs:
        by_setting[_setting(cfg)].append(cfg)
    datasets = {c.task.params().get("dataset") for c in configs if c.task.name == "series_classify"}
    assert datasets == {"GunPoint", "PigCVP"}
    models = {tuple(m["layers"]) for m in MODELS.values()}
    assert len(models) == 6 and ("sliding_window", "neural_memory") in models
    for setting, runs in by_setting.items():
        cells = {(tuple(c.model.layers), c.train.seed) for c in runs}
        assert cells == {(m, s) for m in models for s in SEEDS}, setting  # each memory, each seed, once
        assert len({c.train.lr for c in runs}) == 1, setting  # one learning rate per task
        assert len({c.train.max_steps for c in runs}) == 1, setting  # one budget per task
    assert len(configs) == len(by_setting) * 6 * 2
    assert len({c.model_dump_json() for c in configs}) == len(configs)  # no run twice
    for cfg in configs:
        assert cfg.train.max_steps and cfg.train.max_seconds is None  # work, not time
        assert cfg.model.d_model == 64 and len(cfg.model.layers) <= 2
        assert not cfg.train.checkpoint
        assert validate_config(cfg.model_dump(mode="json")) == cfg  # survives the store's round trip
        check_memory(cfg, available=8 * 2**30)


def test_text_lm_scores_every_test_byte_and_needle_trains_shorter_than_it_is_tested():
    configs = suite_configs("real")
    text = next(c for c in configs if c.task.name == "text_lm")
    task = text.task.build()
    tiles = task.tiles("test", 10**6, seed=0)
    assert len(tiles) <= text.train.num_test  # every test tile, so every test byte, is scored
    docs = task.documents()
    assert not {d.name for d in docs["validation"]} & {d.name for d in docs["test"]}
    needle = next(c for c in configs if c.task.name == "needle_text").task.build()
    assert needle.seq_len < max(needle.test_lengths)
    chorales = next(c for c in configs if c.task.name == "chorales")
    assert chorales.train.num_validation >= 10_000 and chorales.train.num_test >= 10_000  # all frames
    assert chorales.task.params()["frame"] == "quarter"


def _short(cfg, **train) -> dict:
    config = cfg.model_dump(mode="json")
    config["train"].update(train)
    return config


@pytest.mark.slow
def test_two_suite_runs_cut_short_reach_the_report_with_their_figures(tmp_path):
    configs = suite_configs("real")
    picked = [
        next(c for c in configs if c.task.name == "text_lm" and c.model.layers == ["lstm", "lstm"]),
        next(c for c in configs if c.task.name == "needle_text" and c.model.layers == ["lstm", "lstm"]),
    ]
    store = ResultsStore(tmp_path / "r.db")
    small = {"max_steps": 2, "num_train": 64, "num_validation": 16, "num_test": 16, "out_dir": str(tmp_path)}
    for i, cfg in enumerate(picked):
        config = _short(cfg, **small)
        if cfg.task.name == "needle_text":
            config["task"] |= {"grid_examples": 4, "test_lengths": [128, 256]}
        record = run_job(Job(f"r{i}", config, "real"))
        assert record.status == "completed", record.error
        store.write_record(record)
    html = real_sequences(ReportData.from_store(store))
    assert 'id="fig-real-context-curve"' in html and 'id="fig-real-needle-0-0"' in html
    assert "text_lm (corpus=pydoc, seq_len=256): lstm wins" in html
