"""The reviewer's baselines each application run stores (fitted on the run's training data,
scored on its test rows): AR forecasts, an item-to-item Markov recommender, TF-IDF + logistic
regression on texts, logistic regression on digit pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import memzoo
from memzoo.metrics.classifiers import logistic_regression_baseline, tfidf_logreg_baseline
from memzoo.metrics.forecasting import ar_forecast, fit_autoregression, naive_forecast
from memzoo.metrics.ranking import hit_rate_and_ndcg, markov_scores, ranks, transition_counts
from memzoo.tasks.base import IGNORE_INDEX


def _ar1(length: int, phi: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(length)
    for t in range(1, length):
        y[t] = phi * y[t - 1] + rng.normal()
    return y


def test_ar_forecast_matches_the_closed_form_and_statsmodels_own_forecast():
    from statsmodels.tsa.ar_model import AutoReg

    y = _ar1(400, 0.5)
    params = fit_autoregression(y[:300], max_lags=0, fixed_order=2)
    c, a1, a2 = params
    origins = np.array([300, 350])
    forecast = ar_forecast(y, origins, 3, params)
    step0 = c + a1 * y[origins - 1] + a2 * y[origins - 2]
    step1 = c + a1 * step0 + a2 * y[origins - 1]  # recursive: its own forecast fed back
    np.testing.assert_allclose(forecast[:, 0], step0)
    np.testing.assert_allclose(forecast[:, 1], step1)
    expected = AutoReg(y[:300], lags=2, trend="c").fit().predict(start=300, end=302)  # from the end of train
    np.testing.assert_allclose(forecast[0], expected)
    assert ar_forecast(y, origins, 2, np.array([1.5])).tolist() == [[1.5, 1.5], [1.5, 1.5]]  # AR(0)


def test_ar_picks_order_one_on_an_ar1_series_and_beats_naive_on_held_out_windows():
    y = _ar1(2000, 0.3, seed=1)
    params = fit_autoregression(y[:1500], max_lags=10)
    assert len(params) - 1 <= 2 and params[1] == pytest.approx(0.3, abs=0.06)
    origins = np.arange(1500, 1999)
    actual = y[origins]
    ar = np.abs(ar_forecast(y, origins, 1, params)[:, 0] - actual).mean()
    naive = np.abs(naive_forecast(y, origins, 1)[:, 0] - actual).mean()
    assert ar < 0.85 * naive


def test_forecast_task_stores_the_ar_mae_of_the_scored_windows_fitted_on_the_training_part():
    task = memzoo.tasks.build("forecast", series="sunspots", context_len=8, horizon=2)
    prep = task.prepared()
    series, origins = prep.values[:, 0], task.origins("test")[:5]
    out = task.baseline_metrics(*task.split(0, 5, seed=0))
    params = fit_autoregression(series[: prep.train_len], task.ar_max_lags())  # never sees the tail
    expected = np.abs(ar_forecast(series, origins, 2, params) - series[origins[:, None] + np.arange(2)])
    assert out["ar_mae"] * out["series_std"] == pytest.approx(expected.mean())
    assert out["ar_order"] == len(params) - 1 >= 1
    full = task.baseline_metrics(*task.split(0, 10_000, seed=0))
    assert full["ar_mae"] < min(full["naive_mae"], full["seasonal_naive_mae"])  # sunspots: AR is the bar


def _rows(sequences: list[list[int]], pad: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    inputs = torch.full((len(sequences), length), pad)
    targets = torch.full((len(sequences), length), IGNORE_INDEX)
    for n, s in enumerate(sequences):
        inputs[n, length - len(s) + 1 :] = torch.tensor(s[:-1])
        targets[n, length - len(s) + 1 :] = torch.tensor(s[1:])
    return inputs, targets


def test_transition_counts_skip_padding_and_count_repeated_rows_once():
    inputs, targets = _rows([[0, 1, 2], [0, 1, 0]], pad=3, length=4)
    counts = transition_counts(torch.cat([inputs, inputs]), torch.cat([targets, targets]), 3)
    assert counts.tolist() == [[0, 2, 0], [1, 0, 1], [0, 0, 0]]
    popularity = torch.tensor([5.0, 1.0, 3.0])
    scores = markov_scores(counts, torch.tensor([1, 2, 3]), popularity)  # 2: never a last item; 3: pad
    assert ranks(scores, torch.tensor([0, 0, 0])).tolist() == [1, 1, 1]  # tie 1->0 / 1->2: popularity
    assert scores[1].argsort(descending=True).tolist() == [0, 2, 1]  # backoff: popularity order


def test_markov_reaches_hit_rate_one_on_deterministic_transitions_and_beats_popularity():
    cycle = [4, 0, 3, 1, 2]  # every item has one successor
    sequences = [[cycle[(s + t) % 5] for t in range(6)] for s in range(5)]
    inputs, targets = _rows(sequences, pad=5, length=6)
    counts = transition_counts(inputs, targets, 5)
    test_last = torch.tensor([0, 1, 2, 3, 4])
    test_targets = torch.tensor([cycle[(cycle.index(i) + 1) % 5] for i in test_last.tolist()])
    popularity = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    hr1, _ = hit_rate_and_ndcg(ranks(markov_scores(counts, test_last, popularity), test_targets), 1)
    pop_hr1, _ = hit_rate_and_ndcg(ranks(popularity[None].expand(5, -1), test_targets), 1)
    assert hr1 == 1.0 and pop_hr1 == 0.2


def test_recommend_task_stores_markov_beside_popularity_and_markov_wins_on_its_cycles():
    task = memzoo.tasks.build("recommend", num_users=300, num_items=40, num_clusters=4, seq_len=10)
    parts = task.splits(300, 30, 300, seed=0)
    out = task.baseline_metrics(parts.train, parts.test)
    assert {"markov_hr@1", "markov_hr@10", "markov_ndcg@10", "popularity_hr@10"} <= set(out)
    assert out["markov_hr@1"] > out["popularity_hr@1"] + 0.2
    assert out["markov_hr@10"] > out["popularity_hr@10"]
    # a Markov model fitted on no training rows is the popularity ranking
    empty = parts.train.rows(slice(0, 0))
    base = task.baseline_metrics(empty, parts.test)
    assert base["markov_hr@10"] == base["popularity_hr@10"]


def test_logistic_regression_separates_separable_points_and_stores_on_digits():
    x = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    assert logistic_regression_baseline(x, y, torch.tensor([[0.5], [11.5]]), torch.tensor([0, 1])) == {
        "accuracy": 1.0,
        "f1": 1.0,
    }
    task = memzoo.tasks.build("digits")
    train, test = task.split(600, 300, seed=1)
    out = task.baseline_metrics(train, test)
    assert out["logreg_accuracy"] > 0.9 > 0.2 > out["majority_accuracy"]


def test_tfidf_logreg_reads_words_and_beats_majority_on_the_generated_corpus():
    texts = ["good great fine", "great good", "bad awful", "awful bad poor"]
    scores = tfidf_logreg_baseline(
        texts, torch.tensor([0, 0, 1, 1]), ["good", "poor bad"], torch.tensor([0, 1])
    )
    assert scores == {"accuracy": 1.0, "f1": 1.0}
    task = memzoo.tasks.build("text_classify", num_classes=3, seq_len=12)
    train, test = task.split(300, 200, seed=0)
    out = task.baseline_metrics(train, test)
    assert task.texts_of(test)[0] == task.text_tokenizer.decode(test.inputs[0].tolist())
    assert out["tfidf_logreg_accuracy"] > out["majority_accuracy"] + 0.4
    assert 0 < out["tfidf_logreg_f1"] <= 1


def test_classifier_baselines_fall_back_to_the_majority_class_where_nothing_can_be_fitted():
    assert tfidf_logreg_baseline(["", "!", "?"], torch.tensor([1, 1, 0]), ["a"], torch.tensor([1])) == {
        "accuracy": 1.0,
        "f1": 1.0,
    }
    one_class = logistic_regression_baseline(
        torch.ones(3, 2), torch.tensor([2, 2, 2]), torch.ones(2, 2), torch.tensor([2, 0])
    )
    assert one_class["accuracy"] == 0.5


@pytest.mark.parametrize(
    ("missing", "call"),
    [
        ("statsmodels.tsa.ar_model", lambda: fit_autoregression(np.arange(20.0), 2)),
        (
            "sklearn",
            lambda: tfidf_logreg_baseline(["a", "b"], torch.tensor([0, 1]), ["a"], torch.tensor([0])),
        ),
    ],
)
def test_a_missing_optional_library_names_the_extra_to_install(monkeypatch, missing, call):
    monkeypatch.setitem(__import__("sys").modules, missing, None)  # import fails as if not installed
    with pytest.raises(memzoo.errors.MemzooError, match=r"memzoo\[apps\]"):
        call()
