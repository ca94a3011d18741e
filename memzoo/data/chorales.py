"""Bach chorales from music21's bundled corpus, as binary piano rolls.

Shape legend: E note events, T frames, K = 88 keys (MIDI 21-108, A0-C8, the piano's range).

**Source.** music21 (BSD-3, the extra ``memzoo[real]``) ships the chorales inside its wheel
(``music21/corpus/bach/*.mxl``). :func:`chorale_names` lists the Riemenschneider chorales of
``music21.corpus.chorales.Iterator`` (371 numbers, 350 distinct BWV names, of which 348 have
a bundled ``.mxl`` file), in that order; only those bundled files are read (never a local or
user corpus, nothing downloaded), and music21 is told not to write its pickle cache
(``forceSource=True``). A chorale's notes are read from every part as ``(part, midi, onset,
end)`` events in quarter notes (chords give one event per pitch; grace notes, which last
nothing, are dropped; repeats are not expanded: a repeated section is read once, as written;
keys are kept as written, nothing is transposed).

**Piano roll.** :func:`piano_roll` samples the events at frames of a fixed step (a quarter
note, 1.0, as the JSB-Chorales benchmark of Boulanger-Lewandowski et al. 2012 does, or an
eighth note, 0.5): key k is on in frame t when a note of that pitch sounds at time ``t * step``
(``onset <= t * step < end``). A note that starts and ends between two frame times (a passing
eighth note at quarter frames) is therefore not seen. Four voices give at most four keys per
frame (fewer where voices rest or sing the same pitch).

**Speed.** Parsing one chorale takes ~0.08 s, the whole set ~30 s on one core (measured with
music21 10.5.1). Events are cached per process (:func:`chorale_events`, ``lru_cache``); with
``cache_dir`` :func:`load_chorale_set` also keeps them in one ``.npz`` file in that folder
(written through ``memzoo.files``, nowhere else), so later processes skip the parse.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memzoo.errors import ConfigError, MemzooError
from memzoo.files import make_folder, os_errors_named, write_file_with

LOWEST_KEY, HIGHEST_KEY = 21, 108
NUM_KEYS = HIGHEST_KEY - LOWEST_KEY + 1  # 88
CACHE_FORMAT = 1  # bump when the cached events change meaning
_EPS = 1e-6  # onsets are exact fractions of a quarter; floats compared with this tolerance


def _music21():
    try:
        import music21
        import music21.converter
        import music21.corpus.chorales
    except ImportError:
        raise ConfigError(
            "the chorales task reads music21's bundled Bach chorales: pip install 'memzoo[real]'"
        ) from None
    return music21


def corpus_folder() -> Path:
    """The folder of the Bach files bundled in the installed music21 wheel."""
    return Path(_music21().corpus.__file__).parent / "bach"


@functools.lru_cache(maxsize=1)
def chorale_names() -> tuple[str, ...]:
    """Names (``"bwv269"``) of the Riemenschneider chorales with a bundled ``.mxl`` file, in
    the Riemenschneider order of ``music21.corpus.chorales.Iterator``, each name once."""
    m21 = _music21()
    listed = m21.corpus.chorales.Iterator(returnType="filename")  # "bach/bwv269", no parsing
    names = dict.fromkeys(str(name).removeprefix("bach/") for name in listed)
    folder = corpus_folder()
    return tuple(name for name in names if (folder / f"{name}.mxl").is_file())


@functools.lru_cache(maxsize=512)
def chorale_events(name: str) -> np.ndarray:
    """The notes of chorale ``name`` as float64 ``[E, 4]`` rows ``(part, midi, onset, end)``
    (onset and end in quarter notes from the start), sorted; read-only."""
    if name not in chorale_names():
        raise ConfigError(f"unknown chorale {name!r}; see memzoo.data.chorales.chorale_names()")
    m21 = _music21()
    score = m21.converter.parse(corpus_folder() / f"{name}.mxl", forceSource=True)
    rows = []
    for part_index, part in enumerate(score.parts):
        for note in part.flatten().notes:  # notes and chords, offsets from the part's start
            length = float(note.quarterLength)
            if length <= 0:  # a grace note
                continue
            onset = float(note.offset)
            rows += [(part_index, p.midi, onset, onset + length) for p in note.pitches]
    events = np.array(sorted(rows), dtype=np.float64).reshape(-1, 4)
    events.setflags(write=False)
    return events


def num_parts(events: np.ndarray) -> int:
    """How many parts (voices, instruments) have notes in ``events``."""
    return len(np.unique(events[:, 0]))


def piano_roll(events: np.ndarray, step: float) -> np.ndarray:
    """Binary piano roll ``[T, 88]`` (bool) of ``events [E, 4]`` sampled every ``step`` quarter
    notes; ``T = ceil(last end / step)``. Pitches outside MIDI 21-108 are dropped (the
    chorales have none)."""
    if step <= 0:
        raise ConfigError(f"step must be > 0 quarter notes, got {step}")
    if len(events) == 0:
        return np.zeros((0, NUM_KEYS), dtype=bool)
    frames = math.ceil(float(events[:, 3].max()) / step - _EPS)
    keys = events[:, 1].astype(np.int64) - LOWEST_KEY  # [E]
    first = np.ceil(events[:, 2] / step - _EPS).astype(np.int64)  # first frame time >= onset
    stop = np.ceil(events[:, 3] / step - _EPS).astype(np.int64)  # first frame time >= end
    keep = (keys >= 0) & (keys < NUM_KEYS) & (stop > first)
    change = np.zeros((frames + 1, NUM_KEYS), dtype=np.int64)
    np.add.at(change, (first[keep], keys[keep]), 1)
    np.add.at(change, (stop[keep], keys[keep]), -1)
    return np.cumsum(change, axis=0)[:frames] > 0


@dataclass(frozen=True)
class ChoraleSet:
    """Events of several chorales: ``names[i]`` has ``events[i]`` (``[E_i, 4]``)."""

    names: tuple[str, ...]
    events: tuple[np.ndarray, ...]


def load_chorale_set(count: int | None = None, cache_dir: str | None = None) -> ChoraleSet:
    """The first ``count`` chorales of :func:`chorale_names` (None: all), parsed here or read
    from (and then written to) the event cache in ``cache_dir``."""
    names = chorale_names()[:count]
    if cache_dir is None:
        return ChoraleSet(names, tuple(chorale_events(name) for name in names))
    cached = _cached_set(str(cache_dir))
    by_name = dict(zip(cached.names, cached.events))
    return ChoraleSet(names, tuple(by_name[name] for name in names))


def cache_file(cache_dir: str | Path) -> Path:
    """Where the event cache of the installed music21 lives in ``cache_dir``."""
    version = _music21().__version__
    return Path(cache_dir) / f"chorales-music21-{version}-v{CACHE_FORMAT}.npz"


@functools.lru_cache(maxsize=4)
def _cached_set(cache_dir: str) -> ChoraleSet:
    """Every chorale's events from ``cache_dir``'s cache file; the file is built (parsing the
    whole set once) when missing or when it does not hold the bundled names."""
    path = cache_file(cache_dir)
    names = chorale_names()
    if path.is_file():
        found = _read_cache(path)
        if found.names == names:
            return found
    parsed = ChoraleSet(names, tuple(chorale_events(name) for name in names))
    make_folder(cache_dir, "chorales cache_dir")
    write_file_with(path, lambda fresh: _write_cache(fresh, parsed))
    return parsed


def _write_cache(path: Path, chorales: ChoraleSet) -> None:
    counts = np.array([len(e) for e in chorales.events], dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, names=np.array(chorales.names), counts=counts, events=np.concatenate(chorales.events))
    path.write_bytes(buffer.getvalue())


def _read_cache(path: Path) -> ChoraleSet:
    """The set stored at ``path`` (no pickles are loaded); a ``MemzooError`` if malformed."""
    with os_errors_named(path, "read chorales cache"):
        try:
            with np.load(path, allow_pickle=False) as stored:
                names, counts, events = stored["names"], stored["counts"], stored["events"]
        except (ValueError, KeyError) as err:
            raise MemzooError(f"chorales cache {str(path)!r} is malformed ({err}); delete it") from None
    if events.ndim != 2 or events.shape[1] != 4 or int(counts.sum()) != len(events):
        raise MemzooError(f"chorales cache {str(path)!r} is malformed; delete it")
    parts = np.split(events.astype(np.float64), np.cumsum(counts)[:-1])
    for part in parts:
        part.setflags(write=False)
    return ChoraleSet(tuple(str(n) for n in names), tuple(parts))
