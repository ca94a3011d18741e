"""The report's "Real sequences" section, from hand-made run records: the winner of each task and
its margin against the strongest baseline, the learning rate picked on validation, Spearman's
rho against the MQAR recall ranking (hand-computed cases), the context curves with the points a
layer was not scored at, the needle heatmaps, and stores it must pass over without crashing."""

from __future__ import annotations

import random
import re

import pytest
from scipy.stats import spearmanr

from memzoo.report.data import ReportData
from memzoo.report.html import build_report_html
from memzoo.report.real import real_sequences
from memzoo.report.real_cells import real_cells
from memzoo.report.real_rank import average_ranks, spearman_rho
from memzoo.results.record import RunRecord, config_hash

CSV_ROWS = re.compile(r'id="fig-real-context-curve".*?data \(CSV, (\d+) rows\)', re.S)
LAYERS = ("lstm", "attention", "deltanet", "mlstm")
REASON = "layer(s) attention hold O(T) state and never saw a position past the training window"


def _run(task, layer, seed=0, metrics=None, *, suite="real", lr=3e-3, status="completed", task_params=None):
    config = {
        "task": {"name": task, **(task_params or {})},
        "model": {"layers": [layer, layer], "d_model": 64},
        "train": {"lr": lr, "seed": seed},
    }
    return RunRecord(
        run_id=f"{suite}-{task}-{layer}-{seed}-{lr}",
        config=config,
        config_hash=config_hash(config),
        status=status,
        task=task,
        layers=[layer, layer],
        suite=suite,
        state_bytes=1000,
        metrics=metrics if metrics is not None else {},
    )


def _text(layer, seed, bpb, lr=3e-3, validation=0.5, curve=None):
    metrics = {"accuracy": 0.5, "bpb": bpb, "ngram_bpb": 2.0, "ngram_order": 5, "unigram_bpb": 4.7}
    metrics |= {"validation": {"accuracy": validation}, **(curve or {})}
    return _run("text_lm", layer, seed, metrics, lr=lr, task_params={"seq_len": 256})


def _recall(layer, accuracy, seed=0):
    metrics = {"accuracy": accuracy, "validation": {"accuracy": accuracy}}
    return _run("mqar", layer, seed, metrics, suite="quick", task_params={"seq_len": 64})


def _chorales(layer, nll, seed=0):
    metrics = {"nll_per_step": nll, "frame_accuracy": 0.1, "validation": {"nll_per_step": nll}}
    metrics |= {"repeat_nll_per_step": 10.6, "frequency_nll_per_step": 11.0}
    return _run("chorales", layer, seed, metrics, task_params={"seq_len": 64, "cache_dir": "results/cache"})


def test_each_task_names_its_winner_and_its_margin_against_the_strongest_baseline():
    runs = [
        _text("lstm", 0, 2.5),
        _text("lstm", 1, 2.6),
        _text("attention", 0, 2.2),
        _text("attention", 1, 2.3),
        _text("deltanet", 0, 2.4),
        _text("deltanet", 1, 2.4),
        *(_chorales(layer, nll) for layer, nll in (("lstm", 8.0), ("attention", 11.5))),
    ]
    html = real_sequences(ReportData(runs=runs))
    assert (
        "text_lm (seq_len=256): attention wins (bpb 2.250 ± 0.071, n=2), 0.150 better than the "
        "runner-up deltanet (2.400); it falls short of the strongest baseline, byte 5-gram (2.000), "
        "by 0.250." in html
    )
    assert (
        "chorales (seq_len=64): lstm wins (nll_per_step 8.000, n=1), 3.500 better than the runner-up "
        "attention (11.500); it beats the strongest baseline, repeat the previous frame (10.600), by 2.600."
        in html
    )  # cache_dir is not part of the setting's name
    assert html.index("text_lm (seq_len=256)") < html.index("chorales (seq_len=64)")  # the tasks' order


def test_the_learning_rate_is_picked_on_validation_never_on_test():
    runs = [
        _text("lstm", 0, 2.0, lr=1e-2, validation=0.40),  # best test, worse validation
        _text("lstm", 0, 2.6, lr=3e-3, validation=0.55),
    ]
    (cell,) = real_cells(ReportData(runs=runs))["text_lm (seq_len=256)"]
    assert cell.lr == 3e-3 and cell.values == [2.6] and cell.picked_on == "validation"


def _rank_row(html: str, setting: str) -> list[str]:
    table = html[html.index("Does the recall ranking hold") :]
    row = re.search(rf"<tr><td>{re.escape(setting)}</td>(.*?)</tr>", table).group(1)
    return re.findall(r"<td[^>]*>(.*?)</td>", row)


def test_spearman_rho_is_one_for_the_same_order_and_minus_one_for_the_reverse():
    recall = [_recall(layer, acc) for layer, acc in zip(LAYERS, (0.2, 0.99, 0.9, 0.95))]
    # text_lm: lower bpb is better; the same order as recall (attention > mlstm > deltanet > lstm)
    same = [_text(layer, 0, bpb) for layer, bpb in zip(LAYERS, (3.0, 2.0, 2.5, 2.2))]
    # chorales: lower NLL is better; the reverse order
    reverse = [_chorales(layer, nll) for layer, nll in zip(LAYERS, (7.0, 10.0, 8.0, 9.0))]
    html = real_sequences(ReportData(runs=recall + same + reverse))
    metric, n, rho, p, layers = _rank_row(html, "text_lm (seq_len=256)")
    assert (metric, n, rho) == ("bits per byte", "4", "1.000")
    assert layers == "attention, mlstm, deltanet, lstm"  # best first on text_lm
    assert float(p) == pytest.approx(spearmanr([1, 2, 3, 4], [1, 2, 3, 4]).pvalue)
    assert _rank_row(html, "chorales (seq_len=64)")[2] == "-1.000"
    assert "attention 0.990 (1 cells)" in html  # the recall scores are printed


def test_fewer_than_three_shared_layers_give_no_rho():
    recall = [_recall("lstm", 0.2), _recall("attention", 0.99)]
    real = [_text(layer, 0, bpb) for layer, bpb in (("lstm", 3.0), ("attention", 2.0), ("mlstm", 2.1))]
    html = real_sequences(ReportData(runs=recall + real))
    assert _rank_row(html, "text_lm (seq_len=256)")[1:4] == ["2", "n/a", "n/a"]


def test_rho_matches_scipy_with_ties():
    rng = random.Random(0)
    for _ in range(20):
        n = rng.randint(3, 9)
        x = [rng.choice((0.1, 0.5, 0.9, rng.random())) for _ in range(n)]
        y = [rng.random() for _ in range(n)]
        expected = spearmanr(x, y).statistic
        got = spearman_rho(x, y)
        assert (got is None) if expected != expected else got == pytest.approx(expected)
    assert average_ranks([3.0, 1.0, 3.0]) == [2.5, 1.0, 2.5]


def _curve(values):
    return {f"context_bpb_{c}": v for c, v in zip((0, 64, 256, 1024, 4096), values)}


def test_context_curves_end_where_a_layer_was_not_scored_and_say_why():
    runs = [_text("lstm", seed, 2.5, curve=_curve([2.7, 2.6, 2.55, 2.55, 2.55])) for seed in (0, 1)] + [
        _text(
            "attention",
            seed,
            2.2,
            curve=_curve([2.6, 2.3, None, None, None]) | {"context_bpb_reason": REASON},
        )
        for seed in (0, 1)
    ]
    html = real_sequences(ReportData(runs=runs))
    assert CSV_ROWS.search(html).group(1) == "7"  # 5 lstm points + 2 attention points
    assert f"attention at C = 256, 1024, 4096: {REASON}" in html


def test_needle_heatmap_per_layer_averages_the_seeds():
    def needle(layer, seed, value):
        grid = {"128": {"0": value, "1": 1.0}, "512": {"0": 0.0, "1": value}}
        metrics = {"accuracy": value, "majority_byte_accuracy": 0.1, "exact_match_by_length_depth": grid}
        return _run("needle_text", layer, seed, metrics, task_params={"seq_len": 128})

    runs = [needle("attention", s, v) for s, v in ((0, 0.5), (1, 0.7))] + [needle("lstm", 0, 0.1)]
    html = real_sequences(ReportData(runs=runs))
    assert 'id="fig-real-needle-0-0"' in html and 'id="fig-real-needle-0-1"' in html  # attention, lstm
    assert "0.60" in html and "±0.14" in html  # attention's mean and spread over its 2 seeds


def test_no_real_runs_or_unusable_ones_leave_the_section_out():
    assert real_sequences(ReportData(runs=[])) is None
    assert real_sequences(ReportData(runs=[_recall("lstm", 0.5)])) is None
    odd = [
        _run("text_lm", "lstm", 0, {"bpb": None}),
        _run("text_lm", "lstm", 1, {"bpb": "2.5"}),
        _run("chorales", "lstm", 0, {"nll_per_step": 8.0}, status="failed"),
        _run("series_classify", "lstm", 0, {"accuracy": float("nan")}),
    ]
    odd.append(_run("needle_text", "lstm", 0, {}))
    odd[-1].metrics = None
    assert real_sequences(ReportData(runs=odd)) is None


def test_the_section_survives_odd_runs_beside_good_ones_in_the_whole_report():
    good = [_text("lstm", 0, 2.5, curve=_curve([2.7, "x", None, 2.5, 2.5]))]
    needle = _run("needle_text", "lstm", 0, {"accuracy": 0.3, "exact_match_by_length_depth": {"a": {"b": 1}}})
    odd = [_run("text_lm", "attention", 0, {"bpb": "n/a"}), needle]
    html = build_report_html(ReportData(runs=good + odd))
    assert 'id="real-sequences"' in html and "text_lm (seq_len=256): lstm wins" in html
    assert "needle_text: lstm wins" in html  # its malformed grid is not drawn
    assert 'id="fig-real-needle-0-0"' not in html


def test_text_from_the_store_is_escaped():
    evil = "<script>alert(1)</script>"
    curve = _curve([2.7, 2.6, None, None, None]) | {"context_bpb_reason": evil}
    runs = [
        _run("text_lm", "lstm", 0, {"bpb": 2.5, "ngram_bpb": 2.0} | curve, task_params={"corpus": evil}),
        _run("text_lm", "lstm", 1, {"bpb": 2.4, "ngram_bpb": 2.0} | curve, task_params={"corpus": evil}),
    ]
    html = real_sequences(ReportData(runs=runs))
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_generated_text_shows_each_models_lowest_seed_sample_escaped_under_one_prompt():
    def sampled(layer, seed, text):
        run = _text(layer, seed, 2.5 if layer == "lstm" else 2.2)
        run.metrics |= {"sample_prompt": "The <b>assert</b> statement", "sample_text": text}
        return run

    runs = [sampled("lstm", 1, "seed one"), sampled("lstm", 0, "seed zero\nline <i>")]
    runs.append(_text("attention", 0, 2.2))
    runs[-1].metrics["sample_reason"] = "cannot generate: not a language model"
    html = real_sequences(ReportData(runs=runs))
    assert "text_lm (seq_len=256): generated text" in html
    assert "seed zero\nline &lt;i&gt;" in html and "seed one" not in html  # the lowest seed
    assert "Prompt: <code" in html and "The &lt;b&gt;assert&lt;/b&gt; statement" in html
    assert "cannot generate: not a language model" in html
    assert real_sequences(ReportData(runs=[_text("lstm", 0, 2.5)])).count("generated text") == 0
