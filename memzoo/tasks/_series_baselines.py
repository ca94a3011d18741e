"""Model-free classifiers of whole series for ``series_classify``: 1-NN DTW and ROCKET.

Shape legend: N training series, M test series, C channels, T / U time steps.

- **1-NN DTW**, full warping window (no Sakoe-Chiba band; the UCR archive's ``DTW (w=100)``):
  the distance of two series ``x [C, T]`` and ``y [C, U]`` is the smallest accumulated cost of
  a warping path, with the squared Euclidean distance over channels as the cost of aligning
  step ``i`` of ``x`` with step ``j`` of ``y`` (for C > 1 this is the *dependent* DTW_D of the
  UEA archive). The square root pyts applies does not change which neighbour is nearest.
  :func:`nearest_by_dtw` is a numba kernel written for speed (two rows of the cost table, and
  an exact early abandon: once every cell of a row exceeds the best distance so far, no path
  through that row can beat it); the tests check it against ``pyts.metrics.dtw``. On PigCVP
  (104 x 208 series of 2,000 steps) it takes ~150 s on one core, ~11 s at 500 steps.
- **ROCKET** (Dempster, Petitjean, Webb 2020): random dilated convolution kernels (seeded,
  drawn as in the paper), the max and proportion of positive values of each kernel's output,
  then scikit-learn's ``RidgeClassifierCV`` over ``logspace(-3, 3, 10)`` on standardised
  features, as in the paper. MiniRocket (same authors, its successor) lives in aeon, not pyts,
  so ROCKET stands in for it. The transform is written here in torch (``conv1d`` per group of
  kernels sharing a length, dilation and padding) because importing
  ``pyts.transformation.ROCKET`` compiles numba code for ~45 s on a CPU; given pyts' kernels
  it reproduces pyts' features to 1e-14 (checked once by hand; pyts' own kernel draw differs,
  numba's random stream). Like pyts' ROCKET it is univariate: a multivariate series gets
  features per channel (the same kernels), concatenated — a channel-independent ROCKET, not
  the paper's multivariate variant.

numba and scikit-learn come with pyts (the ``real`` extra); a missing one is a ``ConfigError``.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass

import numpy as np
import torch

from memzoo.errors import ConfigError

RIDGE_ALPHAS = np.logspace(-3, 3, 10)


def _extra(module: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"the series baselines need {module.split('.')[0]} (with pyts): pip install 'memzoo[real]'"
        ) from None


def dtw_cost(x: np.ndarray, y: np.ndarray, bound: float = np.inf) -> float:
    """Full-window DTW of ``x [C, T]`` and ``y [C, U]``: the smallest accumulated squared
    Euclidean cost of a warping path; ``inf`` as soon as it must exceed ``bound``.

    Pure Python here (slow); :func:`nearest_by_dtw` runs the same code compiled by numba."""
    steps_x, steps_y = x.shape[1], y.shape[1]
    prev = np.full(steps_y + 1, np.inf)  # row i-1 of the accumulated cost, shifted by one
    cur = np.full(steps_y + 1, np.inf)
    prev[0] = 0.0
    for i in range(steps_x):
        cur[0] = np.inf
        row_min = np.inf
        for j in range(steps_y):
            cost = 0.0
            for c in range(x.shape[0]):
                diff = x[c, i] - y[c, j]
                cost += diff * diff
            best = min(prev[j], prev[j + 1], cur[j])
            cur[j + 1] = cost + best
            row_min = min(row_min, cur[j + 1])
        if row_min > bound:  # every path crosses row i: none can end below the bound
            return np.inf
        prev, cur = cur, prev
        prev[0] = np.inf
    return prev[steps_y]


@functools.lru_cache(maxsize=1)
def _compiled_nearest():
    """:func:`dtw_cost` and the 1-NN search over it, compiled by numba (once per process)."""
    numba = _extra("numba")
    cost = numba.njit(dtw_cost)

    @numba.njit
    def nearest(train: np.ndarray, test: np.ndarray) -> np.ndarray:
        out = np.empty(test.shape[0], dtype=np.int64)
        for q in range(test.shape[0]):
            best, arg = np.inf, 0
            for r in range(train.shape[0]):
                value = cost(test[q], train[r], best)
                if value < best:  # ties keep the earlier training series
                    best, arg = value, r
            out[q] = arg
        return out

    return nearest


def nearest_by_dtw(train_x: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Index ``[M]`` of each test series' nearest training series under full-window DTW.

    Args:
        train_x: float ``[N, C, T]``; test_x: float ``[M, C, U]`` (same C).
    """
    if len(train_x) == 0:
        raise ConfigError("1-NN DTW needs at least one training series")
    train = np.ascontiguousarray(train_x, dtype=np.float64)
    test = np.ascontiguousarray(test_x, dtype=np.float64)
    return _compiled_nearest()(train, test)


@dataclass(frozen=True)
class RocketKernels:
    """``K`` random kernels: ``weights`` ``[K, 11]`` (zero past ``lengths``), ``lengths``,
    ``dilations``, ``paddings`` ``[K]`` (int64) and ``biases`` ``[K]``."""

    weights: np.ndarray
    lengths: np.ndarray
    biases: np.ndarray
    dilations: np.ndarray
    paddings: np.ndarray


def rocket_kernels(num_kernels: int, num_steps: int, seed: int) -> RocketKernels:
    """ROCKET's kernels for series of ``num_steps`` steps, as in the paper: length 7, 9 or 11;
    weights N(0, 1) then centred; bias U(-1, 1); dilation ``floor(2^x)``, x ~ U(0, A) with
    ``A = log2((num_steps - 1) / (length - 1))``; padding ``(length - 1) * dilation // 2`` on
    both ends with probability 1/2, else none. Deterministic in ``seed`` (numpy Generator)."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice(np.array([7, 9, 11]), size=num_kernels)
    weights = np.zeros((num_kernels, 11))
    for k, length in enumerate(lengths):
        w = rng.normal(0.0, 1.0, size=length)
        weights[k, :length] = w - w.mean()
    biases = rng.uniform(-1.0, 1.0, size=num_kernels)
    spans = np.log2(np.maximum(num_steps - 1, 1) / (lengths - 1))
    dilations = np.floor(2.0 ** rng.uniform(0.0, np.maximum(spans, 0.0))).astype(np.int64)
    padded = rng.integers(0, 2, size=num_kernels).astype(bool)
    paddings = np.where(padded, (lengths - 1) * dilations // 2, 0).astype(np.int64)
    return RocketKernels(weights, lengths.astype(np.int64), biases, dilations, paddings)


def rocket_transform(x: np.ndarray, kernels: RocketKernels, batch: int = 64) -> np.ndarray:
    """ROCKET features of univariate series ``x [N, T]``: ``[N, 2 K]``, per kernel the
    max and the proportion of positive values (ppv) of its biased, dilated convolution (the
    order of ``pyts.transformation.ROCKET``).

    Kernels of one (length, dilation, padding) run as one ``conv1d`` (float64)."""
    series = torch.as_tensor(np.asarray(x, dtype=np.float64))[:, None, :]  # [N, 1, T]
    out = np.zeros((len(series), 2 * len(kernels.lengths)))
    groups = np.stack([kernels.lengths, kernels.dilations, kernels.paddings], axis=1)
    for length, dilation, padding in np.unique(groups, axis=0):
        ids = np.flatnonzero((groups == (length, dilation, padding)).all(axis=1))
        weight = torch.as_tensor(kernels.weights[ids, :length])[:, None, :]  # [G, 1, L]
        bias = torch.as_tensor(kernels.biases[ids])
        for start in range(0, len(series), batch):
            maps = torch.nn.functional.conv1d(
                series[start : start + batch], weight, bias, padding=int(padding), dilation=int(dilation)
            )  # [n, G, T_out]
            rows = slice(start, start + batch)
            out[rows, 2 * ids] = maps.amax(-1).numpy()
            out[rows, 2 * ids + 1] = (maps > 0).double().mean(-1).numpy()
    return out


def rocket_features(train_x: np.ndarray, test_x: np.ndarray, num_kernels: int, seed: int):
    """ROCKET features of ``train_x [N, C, T]`` and ``test_x [M, C, T]``: ``[N, 2 C K]`` and
    ``[M, 2 C K]`` for ``K = num_kernels`` (the same seeded kernels on every channel)."""
    kernels = rocket_kernels(num_kernels, train_x.shape[-1], seed)
    channels = range(train_x.shape[1])
    return (
        np.concatenate([rocket_transform(train_x[:, c], kernels) for c in channels], axis=1),
        np.concatenate([rocket_transform(test_x[:, c], kernels) for c in channels], axis=1),
    )


def rocket_predictions(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_kernels: int, seed: int
) -> np.ndarray:
    """Class ids ``[M]`` a ROCKET + ``RidgeClassifierCV`` classifier fitted on ``train_x`` /
    ``train_y`` gives ``test_x`` (see the module docstring)."""
    linear = _extra("sklearn.linear_model")
    pipeline = _extra("sklearn.pipeline")
    preprocessing = _extra("sklearn.preprocessing")
    train_features, test_features = rocket_features(train_x, test_x, num_kernels, seed)
    model = pipeline.make_pipeline(
        preprocessing.StandardScaler(), linear.RidgeClassifierCV(alphas=RIDGE_ALPHAS)
    )
    return model.fit(train_features, train_y).predict(test_features)
