"""The digits task (8×8 images read pixel by pixel) and the TaskData shapes real-valued and
per-example tasks use; a model that must reach 0.9 accuracy on the held-out images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import memzoo
from memzoo import tasks
from memzoo.errors import ConfigError
from memzoo.tasks import TaskData
from memzoo.tasks._real_data import hold_out
from memzoo.tasks.base import VALIDATION_SEED_OFFSET
from memzoo.tasks.digits import load_digit_images


def test_split_is_disjoint_deterministic_and_seeded():
    task = tasks.build("digits")
    pool, held_out = task.split_rows(torch.Generator().manual_seed(0))
    assert len(held_out) == 359 and len(pool) == 1438
    assert not set(pool.tolist()) & set(held_out.tolist())
    other_pool, _ = task.split_rows(torch.Generator().manual_seed(1))
    assert not np.array_equal(pool, other_pool)
    a_train, a_test = task.split(num_train=2000, num_test=100, seed=0)
    b_train, b_test = task.split(num_train=2000, num_test=100, seed=0)
    assert torch.equal(a_train.inputs, b_train.inputs) and torch.equal(a_test.targets, b_test.targets)
    assert a_train.inputs.shape == (2000, 64, 1) and a_test.inputs.shape == (100, 64, 1)
    assert a_train.targets.dtype == torch.long and set(a_train.targets.tolist()) == set(range(10))


def test_pixels_are_read_row_by_row_and_standardised_on_training_images():
    task = tasks.build("digits")
    parts = task.splits(num_train=1294, num_validation=144, num_test=359, seed=0)  # one pass: the pool
    train, validation, test = parts.train, parts.validation, parts.test
    pixels, labels = load_digit_images()
    pool, held_out = task.split_rows(torch.Generator().manual_seed(0))
    kept, validation_rows = hold_out(len(pool), VALIDATION_SEED_OFFSET)
    assert len(validation) == len(validation_rows) == 144  # 10% of the training pool, never trained on
    pool = pool[kept.numpy()]
    mean, std = pixels[pool].mean(), pixels[pool].std()
    first = held_out[0]
    # Step 8 * row + column reads pixel (row, column) of the 8×8 image.
    image = test.inputs[0, :, 0].numpy() * std + mean
    assert np.allclose(image.reshape(8, 8), pixels[first].reshape(8, 8), atol=1e-4)
    assert int(test.targets[0]) == labels[first]
    assert abs(float(train.inputs.mean())) < 1e-4 and abs(float(train.inputs.std()) - 1) < 1e-3


def test_digits_parameters_and_taskdata_shapes():
    with pytest.raises(ConfigError, match="seq_len"):
        tasks.build("digits", seq_len=32)
    assert tasks.describe("digits")["head"] == "classify"
    x = torch.zeros(4, 6, 2)
    TaskData(x, torch.zeros(4, dtype=torch.long))  # classify: one class per example
    TaskData(x, torch.zeros(4, 3))  # regress: K real values per example
    TaskData(torch.zeros(4, 6, dtype=torch.long), torch.zeros(4, 6, dtype=torch.long))  # tokens
    with pytest.raises(TypeError, match=r"long \[N, T\] or a float \[N, T, F\]"):
        TaskData(torch.zeros(4, 6), torch.zeros(4, 6, dtype=torch.long))  # float inputs without F
    with pytest.raises(ValueError, match="targets must be long"):
        TaskData(x, torch.zeros(5, dtype=torch.long))  # wrong N
    with pytest.raises(ValueError, match="targets must be long"):
        TaskData(x, torch.zeros(4))  # float targets need [N, K]


@pytest.mark.slow
def test_attention_reads_digits_pixel_by_pixel():
    config = {
        "task": {"name": "digits"},
        "model": {"layers": ["attention", "attention"], "d_model": 64},
        "train": {
            "epochs": 12,
            "num_train": 1438,
            "num_test": 1000,
            "batch_size": 64,
            "lr": 3e-3,
            "checkpoint": False,
            "target_accuracy": 1.0,
            "seed": 0,
        },
    }
    torch.manual_seed(0)
    result = memzoo.fit(config)
    # The final epoch's model on the 359 held-out images. Measured: 0.944 (23 s on one core).
    final = result.record.curve[-1]
    assert final["accuracy"] >= 0.9, final
