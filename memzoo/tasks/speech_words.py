"""``speech_words``: isolated spoken words — the ten digits and six commands (classify head).

Shape legend: N utterances, T ``seq_len`` frames (20 ms each by default), F ``num_features``.

Each utterance is one word spoken by an eSpeak NG voice at a random rate and pitch, with
white noise added (see :mod:`memzoo.tasks._speech` for the voices, the parts and a user's
WAV folder instead). ``inputs[n]`` holds its normalised log-mel frames **left**-padded with
zero frames, so the word ends at the last step, where the ``classify`` head reads;
``targets[n]`` is the word's index in :attr:`SpeechWords.class_names`. The model must keep
what it heard at the start of the word until its end — short-term memory over ~30-50 frames.

Sizes by default: training 16 words × 77 voices × ``repeats`` 2 = 2,464 utterances;
validation 16 × 6 voices × ``held_out_repeats`` 2 = 192; test 16 × 8 voices × 2 = 256.

The baseline a speech reviewer expects (:meth:`SpeechWords.baseline_metrics`): dynamic time
warping nearest neighbour on the same frames, every training utterance a template
(``dtw_accuracy``), next to ``majority_accuracy``. Slices: ``voice`` and ``word``.

>>> import tempfile
>>> task = SpeechWords(train_voices=2, repeats=1, held_out_repeats=1, cache_dir=tempfile.mkdtemp())
>>> train, test = task.split(num_train=8, num_test=4, seed=0)
>>> tuple(train.inputs.shape), tuple(test.targets.shape), task.head
((8, 64, 40), (4,), 'classify')
>>> [task.class_names[i] for i in train.targets[:3].tolist()], task.voice_names[int(train.slices["voice"][0])]
(['three', 'go', 'six'], 'en-us+Alex')
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from pydantic import Field, field_validator

from memzoo.data import audio_features as af
from memzoo.errors import MemzooError
from memzoo.metrics.speech import dtw_nearest_neighbour
from memzoo.tasks._speech import SpeechTask
from memzoo.tasks.base import TaskData
from memzoo.tasks.registry import register_task

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
COMMAND_WORDS = ("yes", "no", "up", "down", "stop", "go")


@register_task("speech_words")
class SpeechWords(SpeechTask):
    """Recognise one spoken word (digits and commands) from its log-mel frames."""

    description: ClassVar[str] = (
        "isolated spoken words (10 digits + 6 commands, eSpeak NG voices, or a WAV folder); "
        "test on held-out voices; DTW baseline"
    )
    head: ClassVar[str] = "classify"
    pad_side: ClassVar[str] = "left"

    seq_len: int = Field(64, ge=8, description="frames per example; utterances are left-padded")
    words: tuple[str, ...] = Field(DIGIT_WORDS + COMMAND_WORDS, description="the vocabulary (synthesis)")
    repeats: int = Field(2, ge=1, description="utterances of each word by each training voice")
    held_out_repeats: int = Field(2, ge=1, description="... by each validation / test voice")

    @field_validator("words")
    @classmethod
    def _distinct_words(cls, value):
        if len(value) < 2 or len(set(value)) != len(value) or not all(w.strip() for w in value):
            raise ValueError("words must hold at least 2 distinct non-empty words")
        return value

    _count_fields: ClassVar[list[str]] = ["task.repeats", "task.held_out_repeats", "task.words"]

    def _utterance_count(self, part, num_voices):
        return num_voices * len(self.words) * (self.repeats if part == "train" else self.held_out_repeats)

    def _texts(self, part, voices, rng):
        repeats = self.repeats if part == "train" else self.held_out_repeats
        return [(word, voice) for voice in voices for word in self.words for _ in range(repeats)]

    @property
    def class_names(self) -> list[str]:
        """The words, in class-id order (a folder's: its distinct transcripts, sorted)."""
        if self.path is None:
            return list(self.words)
        if "classes" not in self._cache:
            texts = set()
            for part in ("train", "validation", "test"):
                texts |= set(self.corpus(part).texts)
            self._cache["classes"] = sorted(texts)
        return self._cache["classes"]

    @property
    def output_vocab_size(self) -> int:
        return len(self.class_names)

    def _targets(self, texts: list[str]) -> torch.Tensor:
        index = {word: i for i, word in enumerate(self.class_names)}
        return torch.tensor([index[t] for t in texts], dtype=torch.long)

    def _slices(self, corpus, rows):
        return {**super()._slices(corpus, rows), "word": self._targets([corpus.texts[i] for i in rows])}

    # ---- baselines ------------------------------------------------------------------------
    def baseline_metrics(self, train: TaskData, test: TaskData) -> dict[str, float]:
        """``dtw_accuracy``: dynamic-time-warping nearest neighbour over every training
        utterance (the same frames, padding removed) on the held-out ``test``; and
        ``majority_accuracy``, always naming the word most frequent in ``train``. The DTW
        predictions are cached beside the features."""
        if len(test) == 0:
            return {}
        predictions = self.dtw_predictions(test)
        majority = (test.targets == torch.bincount(train.targets).argmax()).float().mean().item()
        return {
            "dtw_accuracy": float((torch.from_numpy(predictions) == test.targets).float().mean()),
            "majority_accuracy": float(majority),
        }

    def dtw_predictions(self, data: TaskData) -> np.ndarray:
        """``[N]`` the class of each example's DTW-nearest training utterance."""
        train = self.corpus("train")
        queries = [af.trim_padding(x) for x in data.inputs.numpy()]
        if any(len(q) == 0 for q in queries):
            raise MemzooError("an example holds only padding frames")
        labels = self._targets(train.texts).numpy()
        params = {
            "templates": af.array_digest([*train.frames, labels]),
            "queries": af.array_digest([data.inputs.numpy()]),
        }

        def build() -> dict[str, np.ndarray]:
            return {"predictions": dtw_nearest_neighbour(queries, train.frames, labels)}

        return af.cached_arrays("dtw", params, build, self.cache_dir)["predictions"]
