"""Model-free classifier baselines from scikit-learn (the ``apps`` extra), fitted on a run's
training rows only and scored on its test rows, in the run's own units (accuracy, macro F1).

Shape legend: N examples, F features.

- :func:`logistic_regression_baseline`: multinomial logistic regression on feature vectors
  (e.g. the 64 pixels of a digit), features standardised by the training rows;
- :func:`tfidf_logreg_baseline`: TF-IDF of word unigrams and bigrams, then logistic
  regression (texts).

Both are deterministic (lbfgs, no random state involved).
"""

from __future__ import annotations

import re

import numpy as np
import torch

from memzoo.errors import MemzooError
from memzoo.metrics.confusion import accuracy_and_f1

MAX_ITER = 2000
WORD = r"(?u)\b\w+\b"  # a word: letters, digits, underscore (one-letter words kept)


def _sklearn():
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise MemzooError(
            "the logistic-regression baselines need scikit-learn: pip install 'memzoo[apps]'"
        ) from None


def _scored(
    model, train_x, train_y: torch.Tensor, test_x, test_y: torch.Tensor, fits: bool = True
) -> dict[str, float]:
    """Fit ``model`` on the training rows and score it; where it cannot fit (one class, or
    ``fits`` False: no features at all) it predicts the most frequent training class."""
    labels = train_y.reshape(-1).cpu().numpy()
    if len(np.unique(labels)) < 2 or not fits:
        predictions = torch.full_like(test_y.reshape(-1), int(np.bincount(labels).argmax()))
    else:
        model.fit(train_x, labels)
        predictions = torch.from_numpy(np.asarray(model.predict(test_x), dtype=np.int64))
    return accuracy_and_f1(predictions, test_y.reshape(-1).cpu())


def logistic_regression_baseline(
    train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor
) -> dict[str, float]:
    """``{"accuracy", "f1"}`` on ``test`` of a logistic regression fitted on ``train``.

    Args:
        train_x, test_x: features ``[N, ...]`` (flattened to ``[N, F]``).
        train_y, test_y: class ids ``[N]``.
    """
    _sklearn()
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=MAX_ITER))
    flat = [x.reshape(len(x), -1).double().cpu().numpy() for x in (train_x, test_x)]
    return _scored(model, flat[0], train_y, flat[1], test_y)


def tfidf_logreg_baseline(
    train_texts: list[str], train_y: torch.Tensor, test_texts: list[str], test_y: torch.Tensor
) -> dict[str, float]:
    """``{"accuracy", "f1"}`` on ``test_texts`` of TF-IDF (word 1-2-grams, sublinear term
    frequency) + logistic regression fitted on ``train_texts`` (``train_y``: class ids ``[N]``)."""
    _sklearn()
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=WORD)
    model = make_pipeline(vectorizer, LogisticRegression(max_iter=MAX_ITER))
    has_words = any(re.search(WORD, text) for text in train_texts)
    return _scored(model, train_texts, train_y, test_texts, test_y, fits=has_words)
