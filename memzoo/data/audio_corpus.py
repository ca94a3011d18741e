"""Spoken corpora made on this machine: eSpeak NG voices, rates, pitches and noise, cached.

Shape legend: N utterances, T_n frames of utterance n, F features per frame.

A *voice* is an eSpeak accent plus a voice variant (``"en-gb-scotland+f2"``). The voices are
split once and for all into training, validation and test voices that share no variant
(timbre), so a model is scored on speakers it never heard: :data:`VOICES`.

:func:`synthesized_corpus` turns a list of ``(text, voice)`` items into normalised feature
frames. Every utterance draws, from ``seed``, its speaking rate, base pitch, intonation range,
silent margins and the signal-to-noise ratio of the white noise added to it; the audio is
synthesised in a fresh process (see :func:`memzoo.data.audio_synth.synthesize_batch`),
trimmed, resampled to ``sample_rate``, padded with the margins, noised and turned into
frames (:func:`memzoo.data.audio_features.features`). The frames are cached on disk keyed by
every parameter (and the eSpeak library's version), so a second run — in any process —
reads them back in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from memzoo.data import audio_features as af
from memzoo.data import audio_synth
from memzoo.errors import MemzooError

ACCENTS = (
    "en-us",
    "en",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-029",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-us-nyc",
)

# Voice variants (eSpeak's "voices/!v" files; names are case-sensitive) per part; no variant
# is in two parts, nor a numbered sibling of a named held-out variant (iven2, steph2, ...).
# Every one ships with eSpeak NG 1.51 (a Debian 12 system library) and 1.52 (the wheel); the two
# much slower variants (Marco, AnxiousAndy) are left out, so the default seq_len holds any utterance.
_VARIANTS = {
    "train": tuple(
        (
            "Alex Alicia Andrea Andy Annie Demonic Denis Diogo Gene Gene2 Henrique Hugo "
            "Jacky Lee Mario Michael Mike Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm "
            "Tweaky UniRobot adam anika anikaRobot announcer antonio aunty belinda benjamin boris caleb "
            "croak david ed edward edward2 f1 f2 f3 fast grandma grandpa gustave "
            "john kaukovalta klatt klatt3 klatt5 klatt6 m1 m2 m3 m4 m5 marcelo max michel miguel "
            "paul pedro robert robosoft robosoft2 robosoft3 robosoft4 robosoft5 robosoft6 robosoft7 "
            "robosoft8 sandro shelby travis victor zac"
        ).split()
    ),
    "validation": tuple("m8 iven linda pablo quincy rob".split()),
    "test": tuple("m6 m7 f4 f5 klatt2 klatt4 steph norbert".split()),
}


def _voices(part: str, offset: int) -> tuple[str, ...]:
    variants = _VARIANTS[part]
    return tuple(f"{ACCENTS[(i + offset) % len(ACCENTS)]}+{v}" for i, v in enumerate(variants))


VOICES: dict[str, tuple[str, ...]] = {
    "train": _voices("train", 0),
    "validation": _voices("validation", 3),
    "test": _voices("test", 5),
}
ALL_VOICES: tuple[str, ...] = VOICES["train"] + VOICES["validation"] + VOICES["test"]


@dataclass(frozen=True)
class Prosody:
    """Ranges each utterance draws its delivery from (uniform, both ends included).

    Attributes:
        rate: speaking rate, words per minute.
        pitch: eSpeak base pitch, 0-100.
        intonation: eSpeak pitch range (how much the pitch moves), 0-100.
        snr_db: signal-to-noise ratio of the added white noise, decibels.
        margin_s: silence kept before and after the speech, seconds (noise only).
    """

    rate: tuple[int, int] = (130, 210)
    pitch: tuple[int, int] = (30, 70)
    intonation: tuple[int, int] = (30, 70)
    snr_db: tuple[float, float] = (5.0, 25.0)
    margin_s: tuple[float, float] = (0.02, 0.12)


@dataclass
class SpokenCorpus:
    """Utterances as feature frames, with what was said and who said it.

    Attributes:
        frames: one ``[T_n, F]`` float32 array per utterance.
        texts: the transcript of each utterance.
        voices: ``[N]`` int64, each utterance's voice as an index into ``voice_names``
            (for the voices of :data:`VOICES`, an index into :data:`ALL_VOICES`).
        rates: ``[N]`` int64 speaking rate (words per minute; 0 for recorded audio).
        voice_names: the voices.
    """

    frames: list[np.ndarray]
    texts: list[str]
    voices: np.ndarray
    rates: np.ndarray
    voice_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.frames)

    def subset(self, rows) -> SpokenCorpus:
        rows = np.asarray(rows, dtype=np.int64)
        return SpokenCorpus(
            frames=[self.frames[i] for i in rows],
            texts=[self.texts[i] for i in rows],
            voices=self.voices[rows],
            rates=self.rates[rows],
            voice_names=self.voice_names,
        )


@dataclass(frozen=True)
class FeatureSpec:
    """How audio becomes frames (see :func:`memzoo.data.audio_features.features`)."""

    kind: af.FeatureKind = "logmel"
    num_features: int = 40
    frame_ms: float = 20.0
    sample_rate: int = 16000


def _draw(rng: np.random.Generator, bounds, integer: bool):
    low, high = bounds
    if low > high:
        raise MemzooError(f"range {bounds} has its low end above its high end")
    return int(rng.integers(low, high + 1)) if integer else float(rng.uniform(low, high))


def _voice_names(items: list[tuple[str, str]]) -> tuple[str, ...]:
    """The voices a corpus indexes into: :data:`ALL_VOICES` when every voice of ``items`` is one
    of them, else the voices of ``items``, sorted."""
    used = {voice for _, voice in items}
    return ALL_VOICES if used <= set(ALL_VOICES) else tuple(sorted(used))


def _draw_deliveries(count: int, seed: int, prosody: Prosody) -> list[dict]:
    """``count`` deliveries drawn in turn from ``seed`` within ``prosody``: per utterance a dict
    of ``rate``, ``pitch``, ``intonation``, ``snr_db``, ``margins`` (lead, tail seconds) and
    ``noise_seed``. Raises ``MemzooError`` for a range whose low end is above its high end."""
    rng = np.random.default_rng(seed)
    return [
        {
            "rate": _draw(rng, prosody.rate, True),
            "pitch": _draw(rng, prosody.pitch, True),
            "intonation": _draw(rng, prosody.intonation, True),
            "snr_db": _draw(rng, prosody.snr_db, False),
            "margins": (_draw(rng, prosody.margin_s, False), _draw(rng, prosody.margin_s, False)),
            "noise_seed": int(rng.integers(2**31)),
        }
        for _ in range(count)
    ]


def _cache_params(items: list[tuple[str, str]], seed: int, prosody: Prosody, spec: FeatureSpec) -> dict:
    """Everything the corpus's frames depend on, the eSpeak library's version included: the
    parameters its cache file is keyed by."""
    return {
        "items": af.cache_key({"items": items}),
        "seed": seed,
        "prosody": prosody.__dict__,
        "spec": spec.__dict__,
        "espeak": audio_synth.library_version(),
        "version": 1,
    }


def _utterance_frames(
    wave: np.ndarray, delivery: dict, text: str, voice: str, spec: FeatureSpec
) -> np.ndarray:
    """``[T, F]`` frames of one synthesised utterance: ``wave`` trimmed of silence, resampled to
    ``spec.sample_rate``, padded with the delivery's silent margins and noised to its SNR.
    Raises ``MemzooError`` when eSpeak produced only silence."""
    wave = af.trim_silence(wave, audio_synth.SYNTH_RATE)
    if not len(wave):
        raise MemzooError(f"eSpeak NG produced silence for {text!r} in voice {voice!r}")
    wave = af.resample(wave, audio_synth.SYNTH_RATE, spec.sample_rate)
    lead, tail = (int(m * spec.sample_rate) for m in delivery["margins"])
    wave = np.concatenate([np.zeros(lead, np.float32), wave, np.zeros(tail, np.float32)])
    wave = af.add_noise(wave, delivery["snr_db"], np.random.default_rng(delivery["noise_seed"]))
    return af.features(wave, spec.sample_rate, spec.kind, spec.num_features, spec.frame_ms)


def _synthesized_frames(
    items: list[tuple[str, str]], deliveries: list[dict], spec: FeatureSpec
) -> dict[str, np.ndarray]:
    """The frames of every item spoken with its delivery, synthesised in one batch, as the
    arrays of :func:`memzoo.data.audio_features.ragged` (what the cache stores)."""
    requests = [
        audio_synth.request(
            text, voice, d["rate"], d["pitch"], d["intonation"], seed=d["noise_seed"] % 10_000
        )
        for (text, voice), d in zip(items, deliveries)
    ]
    waves = audio_synth.synthesize_batch(requests)
    frames = [
        _utterance_frames(wave, d, text, voice, spec)
        for wave, d, (text, voice) in zip(waves, deliveries, items)
    ]
    return af.ragged(frames)


def synthesized_corpus(
    items: list[tuple[str, str]],
    seed: int,
    prosody: Prosody = Prosody(),
    spec: FeatureSpec = FeatureSpec(),
    cache_dir=None,
    name: str = "corpus",
) -> SpokenCorpus:
    """Feature frames of ``items`` (``(text, voice)`` pairs) spoken by eSpeak NG.

    Deterministic in ``(items, seed, prosody, spec)`` and the eSpeak library: the result is
    cached under ``cache_dir`` (see :func:`memzoo.data.audio_features.cached_arrays`) with
    ``name`` as the file name's prefix.
    """
    voice_names = _voice_names(items)
    voice_index = {v: i for i, v in enumerate(voice_names)}
    deliveries = _draw_deliveries(len(items), seed, prosody)
    params = _cache_params(items, seed, prosody, spec)
    arrays = af.cached_arrays(name, params, lambda: _synthesized_frames(items, deliveries, spec), cache_dir)
    return SpokenCorpus(
        frames=af.unragged(arrays),
        texts=[text for text, _ in items],
        voices=np.array([voice_index[v] for _, v in items], dtype=np.int64),
        rates=np.array([d["rate"] for d in deliveries], dtype=np.int64),
        voice_names=voice_names,
    )
