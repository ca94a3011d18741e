"""``chorales``: next-frame prediction of Bach chorales as 88-key piano rolls (multilabel head).

Shape legend: N windows, T ``seq_len`` frames, K = 88 keys (MIDI 21-108).

The four-part Riemenschneider chorales bundled with music21 (``memzoo.data.chorales``; the
17 with more parts — instruments beside the voices — are left out) become binary piano rolls
with one frame per quarter note (``frame="quarter"``, the JSB-Chorales benchmark's step) or
per eighth note. A chorale of L frames is read after a silent start frame: the model reads
frame t (``inputs [N, T, 88]``, 0/1 floats) and predicts frame t + 1 (``targets [N, T, 88]``,
one Bernoulli per key), so all L frames are predicted, the first from silence. The frames are
cut into windows of T; the last window of a chorale is padded (inputs 0, targets -100 in every
key: not scored), and the memory starts afresh in each window.

The run's metric is ``nll_per_step``: the Bernoulli NLL summed over the 88 keys, averaged over
scored frames, in nats (``memzoo.metrics.multilabel``; lower is better), and
``frame_accuracy``. Published JSB-Chorales NLLs of RNN/LSTM/GRU models are roughly 8-9 nats
per step (e.g. Chung et al. 2014; exact table values not verified here) — on another split
of other files, so not comparable digit for digit.

**Splits.** Each chorale belongs to one part, decided by a hash of ``split_seed`` and its
corpus path (``bach/bwv269``): ``u = sha256(...) / 2**256``; ``u < test_fraction``: test;
``u < test_fraction + validation_fraction``: validation; else train. So validation comes
out of the non-test chorales, a chorale's part never depends on which other chorales are
loaded (``max_chorales``), and no chorale is in two parts. The proportions (default 60/20/20)
follow the benchmark's 229/76/77 chorales, but its split cannot be rebuilt from music21's
files (other sources and editions, 331 rather than 382 chorales), so the parts differ.

Training windows are drawn as whole shuffled passes over the training windows
(``memzoo.tasks._real_data.draw``); validation and test give their first ``num_validation`` /
``num_test`` windows in corpus order (ask for at least as many as there are to score them all).

>>> task = Chorales(seq_len=16, max_chorales=16)  # the first 16 (a 4-part test chorale among them)
>>> train, test = task.split(num_train=4, num_test=100, seed=0)
>>> tuple(train.inputs.shape), tuple(train.targets.shape), task.head
((4, 16, 88), (4, 16, 88), 'multilabel')
>>> roll = task.roll("bwv269")  # quarter-note frames of the first chorale: 4 voices
>>> roll.shape, int(roll.sum(1).max())
((63, 88), 4)
"""

from __future__ import annotations

import functools
import hashlib
from typing import ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from memzoo.data.chorales import NUM_KEYS, chorale_names, load_chorale_set, num_parts, piano_roll
from memzoo.errors import ConfigError
from memzoo.metrics.multilabel import (
    fit_repeat_weight,
    label_frequencies,
    nll_per_step,
    repeat_probabilities,
    scored_frames,
)
from memzoo.models.targets import IGNORE_INDEX
from memzoo.tasks._real_data import check_count, draw
from memzoo.tasks.base import DataSplits, Task, TaskData
from memzoo.tasks.registry import register_task

FRAME_STEPS = {"quarter": 1.0, "eighth": 0.5}  # quarter notes per frame
PARTS = ("train", "validation", "test")
VOICES = 4


@register_task("chorales")
class Chorales(Task):
    """Predict the next 88-key frame of a Bach chorale (music21's corpus): NLL per step."""

    description: ClassVar[str] = (
        "Bach chorales (music21 corpus) as 88-key piano rolls; predict the next frame (NLL per step)"
    )
    head: ClassVar[str] = "multilabel"

    seq_len: int = Field(64, ge=2, le=4096, description="frames per window (T)")
    frame: Literal["quarter", "eighth"] = Field("quarter", description="piano-roll step")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="chorales held out for testing")
    validation_fraction: float = Field(0.2, gt=0, lt=1, description="chorales held out to select")
    split_seed: int = Field(0, description="seed of the hash that assigns chorales to parts")
    max_chorales: int | None = Field(
        None, ge=3, description="read only the first N chorales (Riemenschneider order); None: all"
    )
    cache_dir: str | None = Field(None, description="folder for a parsed-events cache file (.npz)")

    @model_validator(mode="after")
    def _fractions_leave_training(self) -> Chorales:
        if self.test_fraction + self.validation_fraction >= 1:
            raise ValueError(
                f"test_fraction + validation_fraction must be < 1 (got {self.test_fraction} + "
                f"{self.validation_fraction}): nothing would be left to train on"
            )
        return self

    @property
    def input_dim(self) -> int:
        return NUM_KEYS

    @property
    def output_vocab_size(self) -> int:
        return NUM_KEYS

    def part_of(self, name: str) -> str:
        """``"train"``, ``"validation"`` or ``"test"``: chorale ``name``'s part (see the module)."""
        digest = hashlib.sha256(f"{self.split_seed}:bach/{name}".encode()).hexdigest()
        u = int(digest, 16) / 2**256
        if u < self.test_fraction:
            return "test"
        return "validation" if u < self.test_fraction + self.validation_fraction else "train"

    def roll(self, name: str) -> np.ndarray:
        """Piano roll ``[L, 88]`` (bool) of chorale ``name`` at this task's frame step."""
        return _rolls(self.max_chorales, self.cache_dir, self.frame)[name]

    def chorales(self, part: str) -> list[str]:
        """Names of the (four-part) chorales in ``part``, in corpus order."""
        return [
            name
            for name in _rolls(self.max_chorales, self.cache_dir, self.frame)
            if self.part_of(name) == part
        ]

    def pool(self, part: str) -> TaskData:
        """Every window of ``part``'s chorales, in corpus order (see the module)."""
        return _windows(self, part)

    def splits(self, num_train: int, num_validation: int, num_test: int, seed: int) -> DataSplits:
        """``num_train`` training windows drawn with ``seed``, the first ``num_validation``
        validation and ``num_test`` test windows (parts by chorale, see the module)."""
        check_count("num_train", num_train)
        check_count("num_validation", num_validation)
        check_count("num_test", num_test)
        for part in PARTS:
            if not self.chorales(part):
                raise ConfigError(
                    f"no chorale falls in the {part} part (max_chorales={self.max_chorales}, "
                    f"test_fraction={self.test_fraction}, validation_fraction={self.validation_fraction}); "
                    "read more chorales or change split_seed"
                )
        train = self.pool("train")
        picked = draw(len(train), num_train, torch.Generator().manual_seed(seed))
        validation, test = self.pool("validation"), self.pool("test")
        return DataSplits(  # rows picked by index: copies, the cached pools stay untouched
            train.rows(picked),
            validation.rows(torch.arange(min(num_validation, len(validation)))),
            test.rows(torch.arange(min(num_test, len(test)))),
        )

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """Training and test parts of :meth:`splits`."""
        parts = self.splits(num_train, 0, num_test, seed)
        return parts.train, parts.test

    def generate(self, num_examples: int, seed: int) -> TaskData:
        """``num_examples`` training windows drawn with ``seed``."""
        return self.split(num_examples, 0, seed)[0]

    def training_set_metrics(self, train: TaskData) -> dict[str, float]:
        """Chorales per part (``chorales_train`` ...) and the frames of the training chorales
        (``frames_train``, every frame once)."""
        out = {f"chorales_{part}": len(self.chorales(part)) for part in PARTS}
        out["frames_train"] = int(scored_frames(self.pool("train").targets).sum())
        return out

    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        """NLL per step (nats, as the run's ``nll_per_step``) on the scored frames of ``test``
        of two model-free predictors fitted on every frame of the training chorales (each once,
        not the drawn ``train`` windows):

        - ``frequency_nll_per_step``: each key on with its (Laplace-smoothed) training
          frequency, whatever came before;
        - ``repeat_nll_per_step``: the previous frame repeated, mixed with those frequencies,
          ``p = w * previous + (1 - w) * frequency`` (``repeat_weight`` ``w``, fitted on the
          training transitions; the first frame is predicted from the silent start frame).

        See ``memzoo.metrics.multilabel``.
        """
        fit_prev, fit_next = _transitions(self.pool("train"))
        frequencies = label_frequencies(fit_next)
        weight = fit_repeat_weight(fit_prev, fit_next, frequencies)
        previous, following = _transitions(test)
        return {
            "frequency_nll_per_step": nll_per_step(frequencies, following),
            "repeat_nll_per_step": nll_per_step(
                repeat_probabilities(previous, frequencies, weight), following
            ),
            "repeat_weight": weight,
        }


def _transitions(data: TaskData) -> tuple[np.ndarray, np.ndarray]:
    """``(previous [N, 88], following [N, 88])`` frames of every scored position of ``data``."""
    scored = scored_frames(data.targets)  # [B, T]
    return data.inputs[scored].double().numpy(), data.targets[scored].double().numpy()


@functools.lru_cache(maxsize=8)
def _rolls(max_chorales: int | None, cache_dir: str | None, frame: str) -> dict[str, np.ndarray]:
    """Piano rolls of the four-part chorales among the first ``max_chorales``, by name."""
    chorales = load_chorale_set(max_chorales, cache_dir)
    step = FRAME_STEPS[frame]
    return {
        name: piano_roll(events, step)
        for name, events in zip(chorales.names, chorales.events)
        if num_parts(events) == VOICES
    }


@functools.lru_cache(maxsize=32)
def _windows(task: Chorales, part: str) -> TaskData:
    """Windows of ``part`` (see the module); slice ``chorale``: the chorale's corpus index."""
    corpus = chorale_names()
    width = task.seq_len
    inputs, targets, index = [], [], []
    for name in task.chorales(part):
        roll = torch.from_numpy(task.roll(name)).float()  # [L, 88]
        frames = torch.cat([roll.new_zeros(1, NUM_KEYS), roll])  # [L + 1, 88]: silent start
        for start in range(0, len(roll), width):
            read = frames[start : start + width]  # [<=T, 88]
            wanted = frames[start + 1 : start + width + 1]  # [<=T, 88], the next frames
            pad = width - len(wanted)
            inputs.append(torch.cat([read[: len(wanted)], read.new_zeros(pad, NUM_KEYS)]))
            targets.append(torch.cat([wanted, wanted.new_full((pad, NUM_KEYS), float(IGNORE_INDEX))]))
            index.append(corpus.index(name))
    if not inputs:
        return TaskData(
            torch.zeros(0, width, NUM_KEYS),
            torch.zeros(0, width, NUM_KEYS),
            {"chorale": torch.zeros(0, dtype=torch.long)},
        )
    return TaskData(torch.stack(inputs), torch.stack(targets), {"chorale": torch.tensor(index)})
