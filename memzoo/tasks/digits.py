"""``digits``: 8×8 handwritten digits read one pixel at a time (classify head).

Shape legend: N images, T = 64 pixels, F = 1 feature (the pixel's intensity).

scikit-learn ships 1,797 images of the digits 0-9 (``sklearn.datasets.load_digits``, no
download), 8×8 pixels with intensities 0-16. Each image becomes a 64-step sequence in raster
order (row by row, left to right); the model sees one pixel per step and must name the digit
after the last one, so what it read in the first rows has to survive dozens of steps — the
classic long-range-memory test for recurrent networks, at CPU scale.

Intensities are standardised with the mean and standard deviation of the training pixels.
``split(num_train, num_test, seed)`` shuffles the images with ``seed`` and holds out
``test_fraction`` of them; the rest is the training pool (see ``memzoo.tasks._real_data`` for
how ``num_train`` is drawn from it).

>>> task = Digits()
>>> train, test = task.split(num_train=8, num_test=1000, seed=0)
>>> tuple(train.inputs.shape), tuple(train.targets.shape), tuple(test.inputs.shape)
((8, 64, 1), (8,), (359, 64, 1))
>>> task.input_dim, task.output_vocab_size, task.head
(1, 10, 'classify')
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np
import torch
from pydantic import Field

from memzoo.errors import MemzooError
from memzoo.metrics.classifiers import logistic_regression_baseline
from memzoo.metrics.confusion import majority_baseline
from memzoo.tasks._real_data import check_count, draw, hold_out
from memzoo.tasks.base import VALIDATION_SEED_OFFSET, DataSplits, Task, TaskData
from memzoo.tasks.registry import register_task

NUM_PIXELS = 64
NUM_CLASSES = 10


@functools.lru_cache(maxsize=1)
def load_digit_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: pixels ``[1797, 64]`` (0-16, float32) and labels ``[1797]``."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise MemzooError("the digits task reads scikit-learn's digits: pip install 'memzoo[apps]'") from err
    bunch = load_digits()
    return bunch.data.astype(np.float32), bunch.target.astype(np.int64)


@register_task("digits")
class Digits(Task):
    """Classify an 8×8 digit read pixel by pixel as a 64-step sequence."""

    description: ClassVar[str] = "8x8 digits (scikit-learn) read pixel by pixel, 64 steps; name the digit"
    head: ClassVar[str] = "classify"

    seq_len: int = Field(NUM_PIXELS, ge=NUM_PIXELS, le=NUM_PIXELS, description="64 pixels per image (fixed)")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="images held out for testing")

    @property
    def input_dim(self) -> int:
        return 1

    @property
    def output_vocab_size(self) -> int:
        return NUM_CLASSES

    def split_rows(self, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Image indices of the training pool and of the held-out images (disjoint)."""
        num_images = len(load_digit_images()[1])
        order = torch.randperm(num_images, generator=generator).numpy()
        num_held_out = int(round(num_images * self.test_fraction))
        return order[num_held_out:], order[:num_held_out]

    def splits(self, num_train: int, num_validation: int, num_test: int, seed: int) -> DataSplits:
        """``num_train`` training images, up to ``num_validation`` validation images (a seeded
        ``VALIDATION_FRACTION`` of the training pool, never trained on) and up to ``num_test``
        held-out images, all split by ``seed``. Pixels are standardised by the training images."""
        check_count("num_train", num_train)
        check_count("num_test", num_test)
        pixels, labels = load_digit_images()
        generator = torch.Generator().manual_seed(seed)
        pool, test_rows = self.split_rows(generator)
        kept, validation = hold_out(len(pool), seed + VALIDATION_SEED_OFFSET)
        pool, validation_rows = pool[kept.numpy()], pool[validation.numpy()]
        train_rows = pool[draw(len(pool), num_train, generator).numpy()]
        mean, std = float(pixels[pool].mean()), float(pixels[pool].std())

        def examples(rows: np.ndarray) -> TaskData:
            inputs = torch.from_numpy((pixels[rows] - mean) / std)[:, :, None]  # [N, 64, 1]
            return TaskData(inputs=inputs.float(), targets=torch.from_numpy(labels[rows]))

        return DataSplits(
            examples(train_rows), examples(validation_rows[:num_validation]), examples(test_rows[:num_test])
        )

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """Training and test parts of :meth:`splits`."""
        parts = self.splits(num_train, 0, num_test, seed)
        return parts.train, parts.test

    def generate(self, num_examples: int, seed: int) -> TaskData:
        """``num_examples`` training images drawn with ``seed``."""
        return self.split(num_examples, 0, seed)[0]

    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        """Model-free classifiers fitted on ``train``, scored on the held-out images ``test``:
        ``majority_accuracy`` (always the digit most frequent in ``train``) and
        ``logreg_accuracy`` / ``logreg_f1`` (macro, as the run's ``f1``): logistic regression
        on the 64 pixels of the whole image at once (scikit-learn,
        ``memzoo.metrics.classifiers``) — the bar a model reading one pixel at a time must clear."""
        out = {"majority_accuracy": majority_baseline(train.targets, test.targets)["accuracy"]}
        if len(train) and len(test):
            scores = logistic_regression_baseline(train.inputs, train.targets, test.inputs, test.targets)
            out.update(logreg_accuracy=scores["accuracy"], logreg_f1=scores["f1"])
        return out
