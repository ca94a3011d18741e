"""The chorales task (music21's Bach chorales as 88-key piano rolls, next-frame prediction):
piano rolls that match the notes, parts split by chorale, the multilabel head's loss and
metrics, the baselines, a small LSTM that beats them through the normal trainer, and clear
errors. A subset of the corpus (the first :data:`SUBSET` chorales) keeps parsing short."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import memzoo
from memzoo import tasks
from memzoo.data import chorales as data
from memzoo.errors import ConfigError
from memzoo.metrics.multilabel import (
    MultilabelAccumulator,
    fit_repeat_weight,
    label_frequencies,
    nll_per_step,
)
from memzoo.models import SequenceModel
from memzoo.tasks import TaskData
from memzoo.train.objectives import training_loss

music21 = pytest.importorskip("music21")

SUBSET = 60  # the first 60 chorales: 56 of four parts, parsed in a few seconds


def naive_roll(events: np.ndarray, step: float) -> np.ndarray:
    """The piano roll by definition: key on in frame t when a note sounds at t * step."""
    frames = int(np.ceil(events[:, 3].max() / step - 1e-9))
    roll = np.zeros((frames, data.NUM_KEYS), dtype=bool)
    for t in range(frames):
        for _, midi, onset, end in events:
            if onset <= t * step < end:
                roll[t, int(midi) - data.LOWEST_KEY] = True
    return roll


# ---- piano rolls ----------------------------------------------------------------------------


def test_piano_roll_of_a_known_chorale_has_four_voices_per_frame():
    assert data.chorale_names()[0] == "bwv269"  # Riemenschneider no. 1, "Aus meines Herzens Grunde"
    events = data.chorale_events("bwv269")
    assert data.num_parts(events) == 4
    roll = data.piano_roll(events, 1.0)
    assert roll.shape == (63, 88) and roll.dtype == bool
    active = roll.sum(axis=1)
    assert active.max() <= 4 and (active >= 3).mean() >= 0.9 and (active == 4).mean() >= 0.9
    keys = np.flatnonzero(roll.any(axis=0)) + data.LOWEST_KEY
    assert keys.min() >= 36 and keys.max() <= 84  # bass to soprano, C2..C6
    assert np.array_equal(roll, naive_roll(events, 1.0))
    eighths = data.piano_roll(events, 0.5)
    assert eighths.shape == (126, 88) and np.array_equal(eighths, naive_roll(events, 0.5))
    assert np.array_equal(eighths[::2], roll)  # quarter frames are every other eighth frame


def test_only_the_files_bundled_with_music21_are_read(monkeypatch):
    import music21.converter

    wheel = Path(music21.__file__).parent
    assert data.corpus_folder().is_relative_to(wheel) and len(data.chorale_names()) == 348
    opened = []
    parse = music21.converter.parse

    def spy(path, **kwargs):
        opened.append((Path(path), kwargs))
        return parse(path, **kwargs)

    cached = data.chorale_events("bwv347")
    monkeypatch.setattr(music21.converter, "parse", spy)
    assert np.array_equal(data.chorale_events.__wrapped__("bwv347"), cached)  # parsed anew
    [(path, kwargs)] = opened
    assert path == wheel / "corpus" / "bach" / "bwv347.mxl" and kwargs == {"forceSource": True}


def test_piano_roll_samples_each_frame_at_its_start():
    events = np.array(
        [
            [0, 60, 0.0, 0.5],  # an eighth at the start: frame 0
            [0, 62, 0.5, 1.5],  # syncopated: sounds at time 1 -> frame 1
            [1, 64, 1.25, 1.5],  # between two frame times: never seen at quarter frames
            [1, 67, 2.0, 4.0],  # a half note: frames 2 and 3
        ]
    )
    roll = data.piano_roll(events, 1.0)
    on = [sorted((np.flatnonzero(frame) + data.LOWEST_KEY).tolist()) for frame in roll]
    assert on == [[60], [62], [67], [67]]
    with pytest.raises(ConfigError, match="step"):
        data.piano_roll(events, 0.0)


# ---- the task: windows and parts --------------------------------------------------------------


def test_no_chorale_is_in_two_parts_and_every_frame_is_predicted_once():
    task = tasks.build("chorales", max_chorales=SUBSET, seq_len=32)
    parts = {part: task.chorales(part) for part in ("train", "validation", "test")}
    names = [n for n in data.chorale_names()[:SUBSET] if data.num_parts(data.chorale_events(n)) == 4]
    assert sorted(sum(parts.values(), [])) == sorted(names)  # each four-part chorale once
    assert all(len(chorales) >= 5 for chorales in parts.values())
    splits = task.splits(num_train=500, num_validation=10_000, num_test=10_000, seed=0)
    seen = {p: set(getattr(splits, p).slices["chorale"].tolist()) for p in parts}
    assert not (seen["train"] & seen["validation"] or seen["train"] & seen["test"])
    assert not seen["validation"] & seen["test"]
    corpus = data.chorale_names()
    assert seen["test"] == {corpus.index(n) for n in parts["test"]}
    # a chorale's part depends on it alone (not on how many are loaded), and on split_seed
    smaller = tasks.build("chorales", max_chorales=30)
    assert all(smaller.part_of(n) == task.part_of(n) for n in corpus[:30])
    other = tasks.build("chorales", max_chorales=SUBSET, split_seed=1)
    assert [other.part_of(n) for n in names] != [task.part_of(n) for n in names]
    # the test windows, target frames concatenated, give every test chorale's roll once
    test = task.pool("test")
    scored = test.targets[..., 0] != -100
    expected = np.concatenate([task.roll(n) for n in parts["test"]])
    assert np.array_equal(test.targets[scored].numpy().astype(bool), expected)
    # input t + 1 is target t; a chorale starts from a silent frame
    assert torch.equal(test.inputs[:, 1:][scored[:, 1:]], test.targets[:, :-1][scored[:, 1:]])
    assert float(test.inputs[0, 0].abs().sum()) == 0 and bool(scored[0, 0])
    assert float(test.inputs[~scored].abs().sum()) == 0  # padding reads silence
    assert len(splits.train) == 500 and splits.train.inputs.shape[1:] == (32, 88)


def test_baselines_are_fitted_on_training_chorales_and_scored_on_test_frames():
    task = tasks.build("chorales", max_chorales=SUBSET)
    train, test = task.split(num_train=10, num_test=10_000, seed=0)
    metrics = task.baseline_metrics(train, test)
    frames = np.concatenate([task.roll(n) for n in task.chorales("train")]).astype(float)
    frequencies = (frames.sum(0) + 1) / (len(frames) + 2)
    following = np.concatenate([task.roll(n) for n in task.chorales("test")]).astype(float)
    assert metrics["frequency_nll_per_step"] == pytest.approx(nll_per_step(frequencies, following))
    assert metrics["repeat_nll_per_step"] < metrics["frequency_nll_per_step"]
    assert 0 < metrics["repeat_weight"] < 1
    facts = task.training_set_metrics(train)
    assert facts["frames_train"] == len(frames) and facts["chorales_test"] == len(task.chorales("test"))


# ---- the multilabel head --------------------------------------------------------------------


def test_multilabel_loss_and_metrics_follow_their_definitions():
    torch.manual_seed(0)
    targets = (torch.rand(2, 5, 3) < 0.3).float()
    targets[1, 3:] = -100  # two padded frames
    logits = torch.randn(2, 5, 3)
    scored = targets[..., 0] != -100
    p = torch.sigmoid(logits[scored])
    y = targets[scored]
    expected = -(y * p.log() + (1 - y) * (1 - p).log()).sum() / scored.sum()
    acc = MultilabelAccumulator()
    acc.update(logits[:1], targets[:1])
    acc.update(logits[1:], targets[1:])
    out = acc.compute()
    assert out["nll_per_step"] == pytest.approx(float(expected), rel=1e-5) and out["scored_frames"] == 8
    on, predicted = y > 0.5, p >= 0.5
    tp, errors = (on & predicted).sum(), (on | predicted).sum()
    assert out["frame_accuracy"] == pytest.approx(float(tp / errors))
    model = SequenceModel(layers=["lstm"], d_model=8, input_dim=3, head="multilabel", num_outputs=3)
    inputs = torch.rand(2, 5, 3)
    loss = training_loss(model, inputs, targets)
    outputs, _ = model(inputs)
    assert outputs.shape == (2, 5, 3)
    manual = F.binary_cross_entropy_with_logits(outputs[scored], targets[scored], reduction="sum") / 8
    assert float(loss.detach()) == pytest.approx(float(manual.detach()), rel=1e-5)
    TaskData(inputs, targets)  # float [N, T, K] targets are accepted
    with pytest.raises(ValueError, match="targets must be long"):
        TaskData(inputs, targets[:, :4])


def test_baseline_helpers():
    frames = np.array([[1, 0], [1, 0], [1, 1]], dtype=float)
    assert np.allclose(label_frequencies(frames), [4 / 5, 2 / 5])
    steady = np.tile(np.array([[1, 0, 1, 0]], dtype=float), (20, 1))
    assert fit_repeat_weight(steady, steady, label_frequencies(steady)) == pytest.approx(0.99)
    flipped = 1 - steady
    assert fit_repeat_weight(steady, flipped, np.full(4, 0.5)) == 0.0


# ---- learning through the trainer -----------------------------------------------------------


def test_small_lstm_beats_the_baselines_through_the_trainer():
    config = {
        "task": {"name": "chorales", "max_chorales": SUBSET, "seq_len": 64},
        "model": {"layers": ["lstm"], "d_model": 64, "mlp_ratio": 2},
        "train": {
            "max_steps": 160,
            "num_train": 64,
            "num_validation": 10_000,
            "num_test": 10_000,
            "batch_size": 16,
            "lr": 3e-3,
            "checkpoint": False,
            "seed": 0,
            "device": "cpu",
        },
    }
    result = memzoo.fit(config)
    metrics = result.record.metrics
    assert result.record.status == "completed"
    test_pool = tasks.build("chorales", max_chorales=SUBSET).pool("test")
    assert metrics["scored_frames"] == int((test_pool.targets[..., 0] != -100).sum())  # every test frame
    # measured: ~9.4 nats per step against 11.0 (frequency) and 10.6 (repeat)
    assert metrics["nll_per_step"] < metrics["frequency_nll_per_step"] - 0.75
    assert metrics["nll_per_step"] < metrics["repeat_nll_per_step"]
    assert 0 < metrics["frame_accuracy"] < 1


# ---- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"frame": "sixteenth"}, "frame.*quarter.*eighth"),
        ({"seq_len": 1}, "seq_len"),
        ({"test_fraction": 0.5, "validation_fraction": 0.5}, "test_fraction \\+ validation_fraction"),
        ({"max_chorales": 2}, "max_chorales"),
        ({"voices": 4}, "voices"),
    ],
)
def test_bad_parameters_are_config_errors(params, match):
    with pytest.raises(ConfigError, match=match):
        tasks.build("chorales", **params)


def test_errors_name_the_cause(monkeypatch):
    with pytest.raises(ConfigError, match="no chorale falls in the validation part"):
        tasks.build("chorales", max_chorales=5).split(num_train=1, num_test=1, seed=0)
    with pytest.raises(ConfigError, match="segment_len"):
        memzoo.fit(
            {
                "task": {"name": "chorales", "max_chorales": SUBSET},
                "model": {"layers": ["lstm"], "d_model": 8},
                "train": {
                    "max_steps": 1,
                    "num_train": 4,
                    "segment_len": 8,
                    "checkpoint": False,
                    "device": "cpu",
                },
            }
        )
    monkeypatch.setitem(sys.modules, "music21", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'memzoo\[real\]'"):
        data._music21()


def test_event_cache_is_written_in_the_given_folder_only_and_read_back(tmp_path, monkeypatch):
    names = data.chorale_names()[:3]
    monkeypatch.setattr(data, "chorale_names", lambda: names)
    data._cached_set.cache_clear()
    folder = tmp_path / "cache"
    first = data.load_chorale_set(cache_dir=str(folder))
    assert [p.name for p in tmp_path.rglob("*")] == ["cache", data.cache_file(folder).name]
    data._cached_set.cache_clear()
    monkeypatch.setattr(data, "chorale_events", lambda name: pytest.fail("parsed despite the cache"))
    again = data.load_chorale_set(count=2, cache_dir=str(folder))
    assert again.names == names[:2]
    assert all(np.array_equal(a, b) for a, b in zip(again.events, first.events))
    data._cached_set.cache_clear()
