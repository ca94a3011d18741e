"""Spoken words synthesised locally with eSpeak NG (no download, no network).

Shape legend: S audio samples.

The library comes from the ``espeakng-loader`` wheel (``pip install 'memzoo[speech]'``), which
ships ``libespeak-ng`` and its data, or else from a system install (``apt-get install
espeak-ng``). It is driven through ``ctypes`` in a fresh interpreter per batch
(:mod:`memzoo.data._espeak_worker`, standard library only): eSpeak NG carries a little state
from one utterance to the next, so only a fresh process that makes the same calls in the
same order gives the same samples, whatever the calling process did before.

A *voice* is an eSpeak language (its accent) plus a voice variant (its timbre: formants,
pitch range, breathiness), written ``"en-us+m3"``; the speaking rate (words per minute) and
the base pitch (0-100) are set per utterance.

>>> wave = synthesize("seven", voice="en-us+m3", rate=175, pitch=50)
>>> wave.dtype, 0.3 < len(wave) / SYNTH_RATE < 1.5
(dtype('float32'), True)
"""

from __future__ import annotations

import ctypes.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from memzoo.data import _espeak_worker
from memzoo.errors import MemzooError

SYNTH_RATE = _espeak_worker.SYNTH_RATE  # Hz, eSpeak NG's output rate

INSTALL_HINT = (
    "speech synthesis needs eSpeak NG: pip install 'memzoo[speech]' (the espeakng-loader wheel "
    "ships the library) or install the system package espeak-ng"
)


def library() -> tuple[str, str | None]:
    """Path of ``libespeak-ng`` and of its data folder (None: the library's built-in default):
    the ``espeakng-loader`` wheel's, else a system library's."""
    try:
        import espeakng_loader
    except ImportError:
        found = ctypes.util.find_library("espeak-ng")
        if found is None:
            raise MemzooError(INSTALL_HINT) from None
        return found, None
    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path()


def library_version() -> str:
    """Where the library comes from and its version, e.g. ``"espeakng-loader 0.2.4"`` (part of
    the cache key of synthesised audio: another eSpeak may say the same text differently)."""
    try:
        from importlib.metadata import version

        import espeakng_loader  # noqa: F401

        return f"espeakng-loader {version('espeakng-loader')}"
    except ImportError:
        return f"system {ctypes.util.find_library('espeak-ng')}"


def available() -> bool:
    """Whether eSpeak NG can be found here (the wheel or a system library)."""
    try:
        library()
    except MemzooError:
        return False
    return True


def synthesize_batch(requests: list[dict]) -> list[np.ndarray]:
    """Waveforms ``[S]`` (float32 in [-1, 1], at ``SYNTH_RATE`` Hz) of many utterances,
    synthesised in order in one fresh process. Each request holds :func:`synthesize`'s
    keyword arguments."""
    if not requests:
        return []
    lib, data = library()
    with tempfile.TemporaryDirectory() as tmp:
        job, out = Path(tmp, "job.json"), Path(tmp, "samples.raw")
        job.write_text(json.dumps({"library": lib, "data": data, "requests": requests}))
        done = subprocess.run(
            [sys.executable, "-I", "-S", _espeak_worker.__file__, str(job), str(out)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            message = (
                done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
            )
            raise MemzooError(f"speech synthesis failed: {message}")
        counts = json.loads(Path(str(out) + ".json").read_text())
        samples = np.fromfile(out, dtype=np.int16).astype(np.float32) / 32768.0
    return np.split(samples, np.cumsum(counts)[:-1])


def synthesize(
    text: str,
    voice: str = "en-us",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    word_gap: int = 0,
    seed: int = 0,
) -> np.ndarray:
    """Waveform ``[S]`` (float32 in [-1, 1], at ``SYNTH_RATE`` Hz) of ``text`` spoken by eSpeak NG.

    Args:
        text: what to say (plain text, UTF-8).
        voice: ``"language"`` or ``"language+variant"``, e.g. ``"en-gb-scotland+f2"``; an
            unknown language or variant raises (variant names are case-sensitive).
        rate: speaking rate in words per minute (80-450; eSpeak's default 175).
        pitch: base pitch, 0-100 (default 50).
        pitch_range: pitch variation (intonation), 0-100 (default 50).
        word_gap: extra pause between words, in units of 10 ms (default 0).
        seed: seed of eSpeak's own random numbers (libraries older than eSpeak NG 1.51
            ignore it).
    """
    return synthesize_batch([request(text, voice, rate, pitch, pitch_range, word_gap, seed)])[0]


def request(
    text: str,
    voice: str = "en-us",
    rate: int = 175,
    pitch: int = 50,
    pitch_range: int = 50,
    word_gap: int = 0,
    seed: int = 0,
) -> dict:
    """One checked request for :func:`synthesize_batch` (the arguments of :func:`synthesize`)."""
    if not 80 <= rate <= 450:
        raise MemzooError(f"rate must lie in 80..450 words per minute, got {rate}")
    return {
        "text": text,
        "voice": voice,
        "rate": int(rate),
        "pitch": int(pitch),
        "pitch_range": int(pitch_range),
        "word_gap": int(word_gap),
        "seed": int(seed),
    }
