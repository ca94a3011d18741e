"""The `apps` suite: its configs, the baselines each application stores, the report section."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import memzoo
from memzoo.apps import evaluate_recommendations
from memzoo.report.apps import APP_METRICS, app_rows, applications
from memzoo.report.data import ReportData
from memzoo.report.html import build_report_html
from memzoo.results.record import RunRecord
from memzoo.sweep.jobs import Job, run_job
from memzoo.sweep.suites import suite_configs
from memzoo.train import build_model, validate_config
from memzoo.train.run_kinds import translation_config_from_run

APPS = {"text_classify", "translate", "forecast", "digits", "recommend", "speech_words", "speech_digits"}


def test_apps_suite_validates_and_covers_every_application():
    configs = suite_configs("apps")
    assert {c.task.name for c in configs} == APPS == set(APP_METRICS)
    assert {c.task.params()["series"] for c in configs if c.task.name == "forecast"} == {"sunspots", "co2"}
    for name in APPS:  # several kinds of memory on every application
        assert len({tuple(c.model.layers) for c in configs if c.task.name == name}) >= 3, name
    assert all(c.train.seed == 0 and not c.train.checkpoint and c.train.max_seconds for c in configs)
    for c in configs:  # translate runs become Seq2Seq configs only when trained: check now
        if c.task.name == "translate":
            assert translation_config_from_run(c).model.encoder_layers == c.model.layers
    assert len({c.model_dump_json() for c in configs}) == len(configs)  # no run twice


def test_forecast_baselines_are_naive_maes_of_the_scored_windows_in_standardised_units():
    task = memzoo.tasks.build("forecast", series="sunspots", context_len=8, horizon=2)
    series, origins = task.prepared().values[:, 0], task.origins("test")
    ahead = origins[:, None] + np.arange(2)  # [N, 2]
    naive = np.abs(series[ahead] - series[origins - 1][:, None]).mean()
    seasonal = np.abs(series[ahead] - series[ahead - 11]).mean()  # season 11 > horizon
    out = task.baseline_metrics(*task.split(0, 10_000, seed=0))
    assert out["naive_mae"] * out["series_std"] == pytest.approx(naive)
    assert out["seasonal_naive_mae"] * out["series_std"] == pytest.approx(seasonal)
    first = task.baseline_metrics(*task.split(0, 5, seed=0))  # only the windows the run scores
    assert first["naive_mae"] * first["series_std"] == pytest.approx(
        np.abs(series[ahead[:5]] - series[origins[:5] - 1][:, None]).mean()
    )


@pytest.mark.parametrize("spec", [{"name": "digits"}, {"name": "text_classify", "num_classes": 3}])
def test_classifiers_store_the_training_majority_class_accuracy_on_their_held_out_set(spec):
    task = memzoo.tasks.build(**spec)
    train, test = task.split(200, 200, seed=3)
    majority = torch.bincount(train.targets).argmax()  # fitted on train, never on test
    expected = (test.targets == majority).double().mean().item()
    assert task.baseline_metrics(train, test)["majority_accuracy"] == pytest.approx(expected)


def test_recommend_metrics_match_the_application_evaluation():
    task = memzoo.tasks.build("recommend", num_users=60, num_items=30, num_clusters=3, seq_len=8)
    torch.manual_seed(0)
    model = build_model(
        validate_config({"task": {"name": "recommend"}, "model": {"layers": ["gru"], "d_model": 8}}), task
    )
    reference = evaluate_recommendations(model, task)  # every user
    test = task.split(0, 60, seed=0)[1]
    base, learned = task.baseline_metrics(test, test), task.model_metrics(model, test)
    assert base["popularity_hr@10"] == reference["popularity_hr@10"]
    assert learned == {"hr@10": reference["hr@10"], "ndcg@10": reference["ndcg@10"]}
    assert memzoo.tasks.build("digits").model_metrics(model, test) == {}  # no hook: the default


def test_a_benchmark_job_stores_metric_and_baseline_of_its_application():
    train = {"epochs": 1, "num_train": 64, "num_test": 40, "batch_size": 32, "checkpoint": False}
    task = {"name": "recommend", "num_users": 40, "num_items": 20, "num_clusters": 2, "seq_len": 8}
    config = validate_config({"task": task, "model": {"layers": ["gru"], "d_model": 8}, "train": train})
    record = run_job(Job("tiny", config.model_dump(mode="json"), "apps"))
    assert record.status == "completed"
    assert {"accuracy", "popularity_hr@1", "hr@10", "popularity_hr@10"} <= set(record.metrics)
    (row,) = app_rows(ReportData(runs=[record]))
    assert {"markov_hr@1", "markov_hr@10"} <= set(record.metrics)
    strongest = max(
        [
            ("item-to-item Markov", record.metrics["markov_hr@10"]),
            ("popularity", record.metrics["popularity_hr@10"]),
        ],
        key=lambda pair: pair[1],
    )
    assert row[2:7] == ["HR@10", record.metrics["hr@10"], *strongest, record.metrics["hr@10"] - strongest[1]]


def _record(
    run_id: str, task: str, layers: list[str], metrics: dict, status: str = "completed", **task_params
) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        config={"task": {"name": task, **task_params}},
        config_hash=run_id,
        status=status,
        task=task,
        layers=layers,
        suite="apps",
        wall_seconds=2.0,
        metrics={**metrics, "epochs": 3},
    )


def test_applications_section_renders_metric_baseline_and_verdict():
    runs = [
        _record(
            "<b>r1</b>", "text_classify", ["attention_lstm"], {"accuracy": 0.97, "majority_accuracy": 0.51}
        ),
        _record(
            "r2", "translate", ["lstm", "lstm"], {"chrf": 88.25, "gloss_chrf": 50.5, "identity_chrf": 4.9}
        ),
        _record(
            "r3",
            "forecast",
            ["gru"],
            {"mae": 0.8, "naive_mae": 0.75, "seasonal_naive_mae": 0.82},
            series="sunspots",
        ),
        _record("r4", "digits", ["gru"], {"accuracy": 0.91, "majority_accuracy": 0.14}),
        _record("r5", "recommend", ["lstm"], {"hr@10": 0.75, "popularity_hr@10": 0.22, "accuracy": 0.5}),
        _record("r6", "recommend", ["gru"], {"accuracy": 0.5, "popularity_hr@1": 0.05}),  # no hr@10
        _record("r7", "digits", ["rnn"], {"accuracy": 0.3}),  # no baseline stored
        _record("r8", "digits", ["lstm"], {"accuracy": 0.99, "majority_accuracy": 0.1}, status="failed"),
        _record("r9", "mqar", ["gru"], {"accuracy": 0.99}),  # not an application
    ]
    rows = app_rows(ReportData(runs=runs))
    assert [row[-1] for row in rows] == ["<b>r1</b>", "r2", "r3", "r4", "r7", "r6", "r5"]
    by_id = {row[-1]: row for row in rows}
    assert by_id["r2"][2:8] == ["chrF", 88.25, "word-by-word gloss", 50.5, pytest.approx(37.75), "yes"]
    assert by_id["r2"][8] == "copy the source 4.900"
    # forecast: the strongest baseline (naive, 0.75) beats a model at 0.8
    assert by_id["r3"][:8] == [
        "forecast (sunspots)",
        "gru",
        "MAE (standardised)",
        0.8,
        "naive (last value)",
        0.75,
        pytest.approx(0.05),
        "no",
    ]
    assert by_id["r6"][2:8] == ["HR@1 (accuracy)", 0.5, "popularity", 0.05, pytest.approx(0.45), "yes"]
    assert by_id["r7"][4:8] == [None, None, None, "–"]
    html = applications(ReportData(runs=runs))
    assert "5 of 6 runs beat the strongest baseline" in html
    assert (
        '<td>HR@10</td><td class="num">0.750</td><td>popularity</td><td class="num">0.220</td>'
        '<td class="num">0.530</td><td>yes</td>'
    ) in html
    assert "&lt;b&gt;r1&lt;/b&gt;" in html and "<b>r1</b>" not in html
    page = build_report_html(ReportData(runs=runs))
    assert '<section id="applications">' in page and 'href="#applications"' in page
    assert applications(ReportData(runs=[runs[-1], runs[-2]])) is None


def test_applications_compare_with_the_strongest_baseline_and_say_where_memzoo_loses():
    digits = {"majority_accuracy": 0.1, "logreg_accuracy": 0.967}
    runs = [
        _record("d1", "digits", ["attention"], {"accuracy": 0.925, **digits}),
        _record("d2", "digits", ["gru"], {"accuracy": 0.9, **digits}),
        _record(
            "f1",
            "forecast",
            ["gru"],
            {"mae": 0.3, "naive_mae": 0.75, "seasonal_naive_mae": 0.5, "ar_mae": 0.4},
            series="co2",
        ),
        _record("f2", "forecast", ["lstm"], {"mae": 0.45, "naive_mae": 0.75, "ar_mae": 0.4}, series="co2"),
        _record(
            "c1",
            "recommend",
            ["lstm"],
            {"hr@10": 0.7, "popularity_hr@10": 0.22, "markov_hr@10": 0.76, "accuracy": 0.5},
        ),
        _record("c2", "recommend", ["gru"], {"hr@10": 0.6, "popularity_hr@10": 0.22}),  # stored before Markov
    ]
    by_id = {row[-1]: row for row in app_rows(ReportData(runs=runs))}
    # the strongest baseline is the bar, whatever weaker ones the run also stored
    assert by_id["d1"][4:8] == ["logistic regression on pixels", 0.967, pytest.approx(-0.042), "no"]
    assert by_id["d1"][8] == "majority class 0.100"
    assert by_id["f1"][4:8] == ["autoregressive (AR)", 0.4, pytest.approx(-0.1), "yes"]
    assert by_id["f2"][4:8] == ["autoregressive (AR)", 0.4, pytest.approx(0.05), "no"]
    assert by_id["c1"][4:8] == ["item-to-item Markov", 0.76, pytest.approx(-0.06), "no"]
    assert by_id["c2"][4:8] == ["popularity", 0.22, pytest.approx(0.38), "yes"]
    html = applications(ReportData(runs=runs))
    assert "2 of 6 runs beat the strongest baseline" in html
    assert (
        "digits, accuracy: memzoo loses. The best model, attention (0.925), falls short of "
        "logistic regression on pixels (0.967) by 0.042; 0 of 2 runs beat it."
    ) in html
    assert (
        "forecast (co2), MAE (standardised): memzoo wins. The best model, gru (0.300), beats "
        "the strongest baseline, autoregressive (AR) (0.400), by 0.100; 1 of 2 runs beat it."
    ) in html
    assert (
        "recommend, HR@10: memzoo loses. The best model, lstm (0.700), falls short of item-to-item Markov (0.760)"
        in html
    )
