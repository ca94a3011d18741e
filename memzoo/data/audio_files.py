"""A user's recordings: a folder of WAV files and a transcript file.

Layout::

    my_words/
      transcript.txt        one line per recording: <file> <what is said>
      alice/one_1.wav       a sub-folder names the speaker ("alice"); files at the top
      alice/stop_1.wav      level have the speaker ""
      bob/one_1.wav

``transcript.txt`` (the name can be changed) holds ``alice/one_1.wav one`` per line: the
file's path relative to the folder, whitespace, then the words. Blank lines and lines that
start with ``#`` are skipped. Every WAV file must have a line and every line a file; the
files must be mono or multi-channel (averaged) at the expected sample rate with finite samples,
and every name (the transcript's too) must lie inside the folder, links followed. Each of these
problems raises a :class:`memzoo.errors.MemzooError` that names the file and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memzoo.errors import MemzooError
from memzoo.files import path_inside

TRANSCRIPT = "transcript.txt"
LINE_FORMAT = "'<file.wav> <words>' (e.g. 'alice/one_1.wav one')"


@dataclass
class Recording:
    """One recording: ``wave`` ``[S]`` float32 in [-1, 1] at the folder's sample rate."""

    name: str  # path relative to the folder, e.g. "alice/one_1.wav"
    text: str
    speaker: str
    wave: np.ndarray


def read_transcript(path: Path) -> list[tuple[str, str, int]]:
    """``(file name, text, line number)`` of every line of a transcript file."""
    entries = []
    seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) < 2 or not parts[1].strip():
            raise MemzooError(f"{path}:{number}: no words after the file name; each line is {LINE_FORMAT}")
        name, text = parts[0], " ".join(parts[1].split())
        if name in seen:
            raise MemzooError(f"{path}:{number}: {name!r} is already transcribed on line {seen[name]}")
        seen[name] = number
        entries.append((name, text, number))
    if not entries:
        raise MemzooError(f"{path}: the transcript has no lines; each line is {LINE_FORMAT}")
    return entries


def read_wav(path: Path, sample_rate: int) -> np.ndarray:
    """Samples ``[S]`` (float32 in [-1, 1], channels averaged) of one audio file, which must be
    at ``sample_rate`` Hz."""
    try:
        import soundfile
    except ImportError as err:
        raise MemzooError("reading audio files needs soundfile: pip install 'memzoo[speech]'") from err
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:  # soundfile raises its own LibsndfileError / RuntimeError types
        raise MemzooError(f"{path}: cannot read it as audio ({err}); expected a WAV file") from None
    if rate != sample_rate:
        raise MemzooError(
            f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz; set sample_rate={rate} "
            f"if every file has it, or resample the files"
        )
    if len(samples) == 0:
        raise MemzooError(f"{path}: the file holds no samples")
    if not np.isfinite(samples).all():
        raise MemzooError(
            f"{path}: holds non-finite samples (NaN or infinity) at sample {_first_bad(samples)}"
        )
    return samples.mean(1).astype(np.float32)


def _first_bad(samples: np.ndarray) -> int:
    """Index (from 0) of the first sample frame holding a non-finite value."""
    return int(np.flatnonzero(~np.isfinite(samples).all(1))[0])


def load_wav_folder(
    folder: str | Path, transcript: str = TRANSCRIPT, sample_rate: int = 16000
) -> list[Recording]:
    """Every recording of ``folder`` with its transcript line, in transcript order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MemzooError(f"{folder}: not a folder (expected a folder of WAV files and {transcript})")
    transcript_path = path_inside(folder, transcript, "transcript")
    if not transcript_path.is_file():
        raise MemzooError(
            f"{folder}: no transcript file {transcript!r}; write one with a line per recording, {LINE_FORMAT}"
        )
    entries = read_transcript(transcript_path)
    listed = {name for name, _, _ in entries}
    unlisted = sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix.lower() == ".wav" and p.is_file()
    )
    unlisted = [name for name in unlisted if name not in listed]
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
        raise MemzooError(f"{transcript_path}: no line for {shown}; add one per file, {LINE_FORMAT}")
    recordings = []
    for name, text, number in entries:
        path = path_inside(folder, name, f"{transcript_path}:{number}")
        if not path.is_file():
            raise MemzooError(f"{transcript_path}:{number}: file {name!r} does not exist in {folder}")
        speaker = str(Path(name).parent) if Path(name).parent != Path(".") else ""
        recordings.append(Recording(name, text, speaker, read_wav(path, sample_rate)))
    return recordings


def folder_fingerprint(folder: str | Path, transcript: str = TRANSCRIPT) -> dict:
    """Names, sizes and modification times of the transcript and the WAV files: a cache key
    that changes when any of them does."""
    folder = Path(folder)
    files = [folder / transcript] + sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".wav")
    return {
        "folder": str(folder.resolve()),
        "files": [(str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files],
    }
