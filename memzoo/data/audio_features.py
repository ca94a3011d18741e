"""Audio features (log-mel or MFCC frames, from librosa), noise, padding and the feature cache.

Shape legend: S audio samples, T frames, F features per frame, N utterances.

One frame every ``frame_ms`` milliseconds (default 20 ms) over a window of twice that. Each
utterance's frames are normalised on their own (mean 0, standard deviation 1 per feature:
cepstral mean and variance normalisation), which removes most of a recording's loudness and
channel. Padding frames are exactly zero, the mean frame, so a model sees "nothing new" there
and :func:`trim_padding` can find them again.

>>> import numpy as np
>>> wave = np.sin(2 * np.pi * 440 * np.arange(8000) / 16000).astype(np.float32)  # 0.5 s of A4
>>> frames = features(wave, sample_rate=16000, kind="logmel", num_features=40, frame_ms=20)
>>> frames.shape, bool(abs(frames.mean(0)).max() < 1e-4)
((26, 40), True)
>>> padded = pad_frames([frames, frames[:10]], seq_len=30, side="left")
>>> padded.shape, [len(trim_padding(x)) for x in padded]
((2, 30, 40), [26, 10])
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from memzoo.errors import MemzooError
from memzoo.files import make_folder, write_file_with

FeatureKind = Literal["logmel", "mfcc"]
LOG_FLOOR = 1e-6  # added to mel energies before the log, so digital silence stays finite


def _librosa_filters():
    try:
        import librosa.filters
    except ImportError as err:
        raise MemzooError("speech features need librosa: pip install 'memzoo[speech]'") from err
    return librosa.filters


@functools.lru_cache(maxsize=16)
def mel_filters(sample_rate: int, n_fft: int, num_mels: int) -> np.ndarray:
    """librosa's mel filterbank ``[num_mels, n_fft // 2 + 1]`` (Slaney scale and norm), 20 Hz
    to the Nyquist frequency."""
    return (
        _librosa_filters()
        .mel(sr=sample_rate, n_fft=n_fft, n_mels=num_mels, fmin=20.0, fmax=sample_rate / 2)
        .astype(np.float32)
    )


@functools.lru_cache(maxsize=16)
def dct_matrix(size: int) -> np.ndarray:
    """``[size, size]`` orthonormal DCT-II: ``dct_matrix(n) @ x`` is
    ``scipy.fft.dct(x, type=2, norm="ortho", axis=0)``."""
    n = np.arange(size)
    basis = np.cos(np.pi / size * (n[None, :] + 0.5) * n[:, None]) * np.sqrt(2.0 / size)
    basis[0] /= np.sqrt(2.0)
    return basis.astype(np.float32)


def frame_sizes(sample_rate: int, frame_ms: float) -> tuple[int, int, int]:
    """``(hop, window, n_fft)`` in samples: a hop of ``frame_ms``, a window twice as long,
    an FFT of the next power of two."""
    hop = max(1, int(round(sample_rate * frame_ms / 1000)))
    window = 2 * hop
    return hop, window, 1 << (window - 1).bit_length()


def power_spectrogram(wave: np.ndarray, n_fft: int, hop: int, window: int) -> np.ndarray:
    """``[n_fft // 2 + 1, T]`` squared magnitudes of the short-time Fourier transform, framed
    as ``librosa.stft`` frames by default (centred frames, zero padding, a periodic Hann
    window of ``window`` samples centred in ``n_fft``): T = 1 + S // hop."""
    wave = np.asarray(wave, dtype=np.float32)
    padded = np.pad(wave, n_fft // 2)
    num_frames = 1 + (len(padded) - n_fft) // hop
    starts = hop * np.arange(num_frames)[:, None] + np.arange(n_fft)[None, :]  # [T, n_fft]
    hann = np.zeros(n_fft, dtype=np.float32)
    offset = (n_fft - window) // 2
    hann[offset : offset + window] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / window)
    spectrum = np.fft.rfft(padded[starts] * hann, axis=1)  # [T, n_fft // 2 + 1]
    return (np.abs(spectrum) ** 2).T.astype(np.float32)


def features(
    wave: np.ndarray,
    sample_rate: int,
    kind: FeatureKind = "logmel",
    num_features: int = 40,
    frame_ms: float = 20.0,
) -> np.ndarray:
    """Normalised frames ``[T, F]`` (float32) of a mono waveform ``[S]``, T = 1 + S // hop.

    Args:
        wave: samples in [-1, 1].
        sample_rate: Hz.
        kind: ``"logmel"`` (log mel-band energies, F = ``num_features`` bands: the power
            spectrogram through librosa's mel filterbank, the same numbers as
            ``librosa.feature.melspectrogram``) or ``"mfcc"`` (F = ``num_features`` cepstral
            coefficients — the orthonormal DCT-II of 2 * F log mel bands, as
            ``librosa.feature.mfcc``).
        frame_ms: hop between frames; the analysis window is twice as long.
    """
    if kind not in ("logmel", "mfcc"):
        raise MemzooError(f"feature kind must be 'logmel' or 'mfcc', got {kind!r}")
    hop, window, n_fft = frame_sizes(sample_rate, frame_ms)
    num_mels = num_features if kind == "logmel" else 2 * num_features
    mel = mel_filters(sample_rate, n_fft, num_mels) @ power_spectrogram(wave, n_fft, hop, window)
    frames = np.log(mel + LOG_FLOOR)  # [num_mels, T]
    if kind == "mfcc":
        frames = dct_matrix(num_mels)[:num_features] @ frames
    return normalize(frames.T.astype(np.float32))


def normalize(frames: np.ndarray) -> np.ndarray:
    """Mean 0 and standard deviation 1 per feature over the frames ``[T, F]`` of one utterance."""
    mean = frames.mean(0, keepdims=True)
    std = frames.std(0, keepdims=True)
    return ((frames - mean) / np.maximum(std, 1e-3)).astype(np.float32)


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``wave`` plus white Gaussian noise at a signal-to-noise ratio of ``snr_db`` decibels
    (signal power measured over the samples that are not silent)."""
    voiced = wave[np.abs(wave) > 1e-4]
    power = float(np.mean(voiced**2)) if len(voiced) else 1e-8
    noise = rng.standard_normal(len(wave)).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
    return (wave + noise).astype(np.float32)


def trim_silence(wave: np.ndarray, sample_rate: int, top_db: float = 40.0) -> np.ndarray:
    """``wave`` without its leading and trailing 10 ms frames whose energy lies more than
    ``top_db`` decibels below the loudest frame's."""
    size = max(1, sample_rate // 100)
    num = len(wave) // size
    if num == 0 or not np.any(wave):
        return wave[:0]
    energy = (wave[: num * size].reshape(num, size) ** 2).mean(1)
    loud = np.flatnonzero(10 * np.log10(energy + 1e-20) > 10 * np.log10(energy.max()) - top_db)
    return wave[loud[0] * size : (loud[-1] + 1) * size]


def resample(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """``wave`` resampled from ``from_rate`` to ``to_rate`` Hz (soxr, librosa's resampler)."""
    if from_rate == to_rate:
        return wave
    try:
        import soxr
    except ImportError as err:
        raise MemzooError("resampling audio needs soxr: pip install 'memzoo[speech]'") from err
    return soxr.resample(wave, from_rate, to_rate).astype(np.float32)


def pad_frames(frames: list[np.ndarray], seq_len: int, side: Literal["left", "right"]) -> np.ndarray:
    """``[N, T, F]``: each utterance's frames padded with zero frames to ``seq_len`` on ``side``
    (``left``: the utterance ends at the last step; ``right``: it starts at the first).
    Raises if an utterance is longer than ``seq_len``."""
    if not frames:
        raise MemzooError("no utterances to pad")
    dim = frames[0].shape[1]
    out = np.zeros((len(frames), seq_len, dim), dtype=np.float32)
    for n, x in enumerate(frames):
        if len(x) > seq_len:
            raise MemzooError(
                f"an utterance has {len(x)} frames, more than seq_len={seq_len}; raise seq_len "
                f"(or frame_ms) so that the longest utterance fits"
            )
        if side == "left":
            out[n, seq_len - len(x) :] = x
        else:
            out[n, : len(x)] = x
    return out


def trim_padding(x: np.ndarray) -> np.ndarray:
    """The frames ``[T', F]`` of one padded utterance ``[T, F]`` without the all-zero padding
    frames before and after it (a real normalised frame is never exactly zero)."""
    real = np.flatnonzero(np.any(np.asarray(x) != 0, axis=1))
    return x[real[0] : real[-1] + 1] if len(real) else x[:0]


# ---- the on-disk cache --------------------------------------------------------------------
def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$MEMZOO_CACHE``, else ``~/.cache/memzoo``."""
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ.get("MEMZOO_CACHE") or Path.home() / ".cache" / "memzoo")


def cache_key(params: dict) -> str:
    """A short hash of ``params`` (JSON-serialisable): equal parameters, equal key."""
    text = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def array_digest(arrays) -> str:
    """A short hash of the bytes and shapes of ``arrays`` (an iterable of numpy arrays)."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def cached_arrays(
    name: str, params: dict, build: Callable[[], dict[str, np.ndarray]], cache_dir=None
) -> dict[str, np.ndarray]:
    """The arrays ``build()`` returns, stored once under ``<cache>/speech/<name>-<key>.npz``
    (key: :func:`cache_key` of ``params``) and read back on later calls, in any process.

    The file is written to a temporary name and renamed, so concurrent runs never read a
    half-written file; ``params`` is stored beside the arrays (``params.json`` inside).
    """
    folder = cache_root(cache_dir) / "speech"
    path = folder / f"{name}-{cache_key(params)}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                return {key: stored[key] for key in stored.files if key != "params.json"}
        except (OSError, ValueError):
            pass  # a damaged file is rebuilt below
    arrays = build()
    make_folder(folder, "feature cache folder")
    meta = np.frombuffer(json.dumps(params, sort_keys=True, default=str).encode(), dtype=np.uint8)

    def save(fresh) -> None:
        with open(fresh, "wb") as handle:  # a handle: np.savez would add ".npz" to a bare name
            np.savez(handle, **arrays, **{"params.json": meta})

    write_file_with(path, save)  # atomic, never through a link planted in the cache
    return arrays


def ragged(frames: list[np.ndarray]) -> dict[str, np.ndarray]:
    """A list of ``[T_n, F]`` arrays as two arrays a ``.npz`` can hold: ``frames`` ``[sum T_n, F]``
    and ``offsets`` ``[N + 1]``."""
    offsets = np.cumsum([0] + [len(x) for x in frames]).astype(np.int64)
    return {"frames": np.concatenate(frames).astype(np.float32), "offsets": offsets}


def unragged(arrays: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The inverse of :func:`ragged`."""
    offsets = arrays["offsets"]
    return [arrays["frames"][offsets[n] : offsets[n + 1]] for n in range(len(offsets) - 1)]
