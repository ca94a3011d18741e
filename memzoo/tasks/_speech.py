"""What the speech tasks share: voices, prosody and feature parameters, the three parts
(train / validation / test) and how utterances become ``TaskData``.

Shape legend: N utterances, T ``seq_len`` frames, F ``num_features``.

Synthesised data (``path`` unset): each part is a fixed corpus spoken by its own voices
(:data:`memzoo.data.audio_corpus.VOICES`: the validation and test voices share no voice
variant with the training voices), built once from ``data_seed`` and cached on disk, in a
shuffled order. ``split(num_train, num_test, seed)`` draws ``num_train`` training utterances
with ``seed`` (whole passes over the training corpus, see ``memzoo.tasks._real_data``) and
returns the first ``num_test`` test utterances, the same for every seed;
:meth:`SpeechTask.validation` returns the validation voices' utterances, for selecting a
checkpoint without touching the test voices.

A user's folder (``path`` set, see :mod:`memzoo.data.audio_files`): its recordings are split
once by ``split_seed`` — ``test_fraction`` of them for test, as many for validation, the rest
for training; a recording's sub-folder is its speaker.

Slices: ``voice`` (index into :attr:`SpeechTask.voice_names`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, PrivateAttr, field_validator, model_validator

from memzoo.data import audio_features as af
from memzoo.data.audio_corpus import VOICES, FeatureSpec, Prosody, SpokenCorpus, synthesized_corpus
from memzoo.data.audio_features import pad_frames
from memzoo.data.audio_files import folder_fingerprint, load_wav_folder, read_transcript
from memzoo.errors import MemzooError
from memzoo.tasks._real_data import check_count, draw
from memzoo.tasks.base import DataSplits, Task, TaskData

PARTS = ("train", "validation", "test")
MIN_UTTERANCE_SECONDS = 0.1  # shorter than any synthesised word: a lower bound of its audio


class SpeechTask(Task):
    """Base of ``speech_words`` and ``speech_digits``; subclasses define what is said
    (:meth:`_texts`), the targets (:meth:`_targets`) and the padding side."""

    pad_side: ClassVar[Literal["left", "right"]] = "left"

    train_voices: int = Field(
        77, ge=1, le=77, description="training voices used (of 77; 6 validation, 8 test)"
    )
    rate: tuple[int, int] = Field((130, 210), description="speaking rate range, words per minute")
    pitch: tuple[int, int] = Field((30, 70), description="eSpeak base pitch range, 0-100")
    snr_db: tuple[float, float] = Field((5.0, 25.0), description="white-noise signal-to-noise range, dB")
    features: Literal["logmel", "mfcc"] = Field("logmel", description="log-mel bands or MFCCs")
    num_features: int = Field(40, ge=4, le=128, description="features per frame (F)")
    frame_ms: float = Field(20.0, ge=5, le=50, description="milliseconds between frames")
    data_seed: int = Field(0, description="seed of the synthesised corpus (texts, prosody, noise)")
    cache_dir: str | None = Field(None, description="feature cache; default $MEMZOO_CACHE or ~/.cache/memzoo")
    path: str | None = Field(None, description="a folder of WAV files + transcript instead of synthesis")
    transcript: str = Field("transcript.txt", description="transcript file name inside path")
    sample_rate: int = Field(16000, ge=4000, description="Hz; synthesised audio is resampled to it")
    test_fraction: float = Field(
        0.2, gt=0, lt=0.5, description="a folder's share for test (and for validation)"
    )
    split_seed: int = Field(0, description="seed of a folder's split")

    _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("rate", "pitch", "snr_db")
    @classmethod
    def _ordered(cls, value):
        if value[0] > value[1]:
            raise ValueError(f"range {tuple(value)} has its low end above its high end")
        return value

    @field_validator("rate")
    @classmethod
    def _espeak_rate(cls, value):
        if value[0] < 80 or value[1] > 450:
            raise ValueError("eSpeak speaks at 80..450 words per minute")
        return value

    @model_validator(mode="after")
    def _folder_exists(self):
        if self.path is not None:
            if not Path(self.path).is_dir():
                raise ValueError(f"path {self.path!r} is not a folder")
        return self

    def own_data_bytes(self) -> tuple[int, list[str]]:
        """Synthesised audio: every utterance holds at least ``MIN_UTTERANCE_SECONDS`` of float32
        samples (a folder's size is its own)."""
        if self.path is not None:
            return 0, []
        count = sum(self._utterance_count(part, len(self._voices(part))) for part in PARTS)
        return int(4 * MIN_UTTERANCE_SECONDS * self.sample_rate * count), self._count_fields

    def _voices(self, part: str) -> tuple[str, ...]:
        return VOICES[part][: self.train_voices] if part == "train" else VOICES[part]

    # ---- hooks ---------------------------------------------------------------------------
    _count_fields: ClassVar[list[str]] = []  # the fields that set the number of utterances

    def _utterance_count(self, part: str, num_voices: int) -> int:
        """Utterances synthesised for ``part`` (what ``len(self._texts(part, ...))`` will be)."""
        raise NotImplementedError

    def _texts(self, part: str, voices: tuple[str, ...], rng: np.random.Generator) -> list[tuple[str, str]]:
        """``(text, voice)`` items of one synthesised part."""
        raise NotImplementedError

    def _check_text(self, text: str, where: str) -> None:
        """Raise if a folder's transcript ``text`` cannot be a target (``where`` names it)."""

    def _targets(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def _slices(self, corpus, rows: np.ndarray) -> dict[str, torch.Tensor]:
        return {"voice": torch.from_numpy(corpus.voices[rows])}

    # ---- data ----------------------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        return self.num_features

    def _spec(self):
        return FeatureSpec(self.features, self.num_features, self.frame_ms, self.sample_rate)

    def corpus(self, part: str):
        """The :class:`memzoo.data.audio_corpus.SpokenCorpus` of ``part`` (train, validation or
        test), built or read from the cache once per task object."""
        if part not in PARTS:
            raise MemzooError(f"part must be one of {PARTS}, got {part!r}")
        if part not in self._cache:
            if self.path is None:
                self._cache[part] = self._synthesised(part)
            else:
                self._cache.update(self._folder_parts())
        return self._cache[part]

    def _synthesised(self, part: str):
        voices = self._voices(part)
        rng = np.random.default_rng([self.data_seed, PARTS.index(part)])
        items = self._texts(part, voices, rng)
        items = [items[i] for i in rng.permutation(len(items))]
        prosody = Prosody(rate=self.rate, pitch=self.pitch, snr_db=self.snr_db)
        seed = int(rng.integers(2**31))
        return synthesized_corpus(
            items, seed, prosody, self._spec(), self.cache_dir, name=f"{self.name}-{part}"
        )

    def _folder_parts(self) -> dict[str, Any]:
        entries = read_transcript(Path(self.path) / self.transcript)
        for name, text, number in entries:
            self._check_text(text, f"{Path(self.path) / self.transcript}:{number} ({name})")
        spec = self._spec()

        def build() -> dict[str, np.ndarray]:
            recordings = load_wav_folder(self.path, self.transcript, self.sample_rate)
            frames = [
                af.features(
                    af.trim_silence(r.wave, spec.sample_rate),
                    spec.sample_rate,
                    spec.kind,
                    spec.num_features,
                    spec.frame_ms,
                )
                for r in recordings
            ]
            if any(len(f) == 0 for f in frames):
                raise MemzooError(f"{self.path}: a recording is silent after trimming")
            return af.ragged(frames)

        params = {"folder": folder_fingerprint(self.path, self.transcript), "spec": spec.__dict__}
        frames = af.unragged(af.cached_arrays("folder", params, build, self.cache_dir))
        texts = [text for _, text, _ in entries]
        speakers = [
            str(Path(name).parent) if Path(name).parent != Path(".") else "" for name, _, _ in entries
        ]
        voice_names = tuple(sorted(set(speakers)))
        everything = SpokenCorpus(
            frames=frames,
            texts=texts,
            voices=np.array([voice_names.index(s) for s in speakers], dtype=np.int64),
            rates=np.zeros(len(texts), dtype=np.int64),
            voice_names=voice_names,
        )
        if len(everything) < 3:
            raise MemzooError(f"{self.path}: needs at least 3 recordings (train, validation, test)")
        order = torch.randperm(
            len(everything), generator=torch.Generator().manual_seed(self.split_seed)
        ).numpy()
        held = max(1, int(round(len(everything) * self.test_fraction)))
        return {
            "test": everything.subset(order[:held]),
            "validation": everything.subset(order[held : 2 * held]),
            "train": everything.subset(order[2 * held :]),
        }

    @property
    def voice_names(self) -> tuple[str, ...]:
        """Voice (or speaker) names; the ``voice`` slice indexes them."""
        return self.corpus("train").voice_names

    def examples(self, part: str, rows=None) -> TaskData:
        """``TaskData`` of the utterances ``rows`` (default: all) of ``part``."""
        corpus = self.corpus(part)
        rows = np.arange(len(corpus)) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            inputs = torch.zeros(0, self.seq_len, self.num_features)
            return TaskData(
                inputs, self._targets([]), {k: v[:0] for k, v in self._slices(corpus, rows).items()}
            )
        inputs = pad_frames([corpus.frames[i] for i in rows], self.seq_len, self.pad_side)
        texts = [corpus.texts[i] for i in rows]
        return TaskData(torch.from_numpy(inputs), self._targets(texts), self._slices(corpus, rows))

    def split(self, num_train: int, num_test: int, seed: int) -> tuple[TaskData, TaskData]:
        """``num_train`` training utterances drawn with ``seed`` and the first ``num_test``
        test utterances (held-out voices; the same for every seed)."""
        check_count("num_train", num_train)
        check_count("num_test", num_test)
        pool = len(self.corpus("train"))
        rows = draw(pool, num_train, torch.Generator().manual_seed(seed)).numpy()
        test = self.corpus("test")
        return self.examples("train", rows), self.examples("test", np.arange(min(num_test, len(test))))

    def validation(self, num_examples: int | None = None) -> TaskData:
        """The first ``num_examples`` (default all) validation utterances: voices in neither
        the training nor the test part."""
        corpus = self.corpus("validation")
        count = len(corpus) if num_examples is None else min(num_examples, len(corpus))
        return self.examples("validation", np.arange(count))

    def splits(self, num_train: int, num_validation: int, num_test: int, seed: int) -> DataSplits:
        """Training utterances drawn with ``seed``, then the validation voices' and the test
        voices' utterances: three disjoint sets of speakers."""
        train, test = self.split(num_train, num_test, seed)
        return DataSplits(train, self.validation(num_validation), test)

    def generate(self, num_examples: int, seed: int) -> TaskData:
        """``num_examples`` training utterances drawn with ``seed``."""
        return self.split(num_examples, 0, seed)[0]
