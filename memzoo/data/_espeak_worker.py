"""eSpeak NG driven through ctypes: a standalone script (standard library only).

Run by :func:`memzoo.data.audio_synth.synthesize_batch` as
``python -I -S _espeak_worker.py JOB OUT``: JOB is a JSON file
``{"library": path, "data": path or null, "requests": [{text, voice, rate, pitch,
pitch_range, word_gap, seed}, ...]}``; OUT receives the int16 samples of every request one
after the other, and OUT + ".json" their sample counts. On a bad request the script exits
with status 2 and a one-line message on stderr.

It imports nothing outside the standard library so that a fresh interpreter starts in
milliseconds: eSpeak NG carries a little state from one utterance to the next (oscillator
phase, echo buffer), so the same requests give the same samples only in a fresh process.
"""

import ctypes
import json
import sys
from pathlib import Path

SYNTH_RATE = 22050
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class RequestError(Exception):
    """A request eSpeak NG cannot carry out (unknown voice, failed synthesis)."""


class Engine:
    """The loaded library, initialised once."""

    def __init__(self, library: str, data: str | None):
        lib = ctypes.CDLL(library)
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode() if data else None, 0)
        if rate != SYNTH_RATE:
            raise RequestError(f"eSpeak NG failed to initialise (returned {rate})")
        self.lib = lib
        self.chunks = []
        self.callback = _CALLBACK(self._collect)  # kept referenced: the library holds the pointer
        lib.espeak_SetSynthCallback(self.callback)
        # eSpeak NG >= 1.51 draws its random numbers from a seedable generator.
        self.set_seed = getattr(lib, "espeak_ng_SetRandSeed", None)
        path = ctypes.c_char_p()
        lib.espeak_Info(ctypes.byref(path))
        self.variants = Path(path.value.decode()) / "voices" / "!v" if path.value else None

    def _collect(self, samples, count, events) -> int:
        if count > 0:
            self.chunks.append(ctypes.string_at(samples, 2 * count))
        return 0  # 0: go on

    def check_voice(self, voice: str) -> None:
        """eSpeak falls back to its default voice for an unknown variant (names are
        case-sensitive): refuse one instead."""
        if "+" not in voice or self.variants is None or not self.variants.is_dir():
            return
        variant = voice.split("+", 1)[1]
        if not (self.variants / variant).is_file():
            known = ", ".join(sorted(p.name for p in self.variants.iterdir()))
            raise RequestError(f"eSpeak NG has no voice variant {variant!r}; variants: {known}")

    def speak(self, text, voice, rate=175, pitch=50, pitch_range=50, word_gap=0, seed=0) -> bytes:
        self.check_voice(voice)
        if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
            raise RequestError(f"eSpeak NG has no voice {voice!r} (language+variant, e.g. 'en-us+m3')")
        for name, value in (("rate", rate), ("pitch", pitch), ("range", pitch_range), ("wordgap", word_gap)):
            self.lib.espeak_SetParameter(_PARAM[name], int(value), 0)
        self.lib.espeak_SetParameter(_PARAM["volume"], 100, 0)
        if self.set_seed is not None:
            self.set_seed(ctypes.c_long(int(seed)))
        self.chunks = []
        data = text.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if status != 0:
            raise RequestError(f"eSpeak NG could not synthesise {text!r} (error {status})")
        self.lib.espeak_Synchronize()
        return b"".join(self.chunks)


def main(job_file: str, out_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    engine = Engine(job["library"], job["data"])
    counts = []
    with open(out_file, "wb") as out:
        for request in job["requests"]:
            samples = engine.speak(**request)
            out.write(samples)
            counts.append(len(samples) // 2)
    Path(out_file + ".json").write_text(json.dumps(counts))


if __name__ == "__main__":
    try:
        main(sys.argv[1], sys.argv[2])
    except (RequestError, OSError) as err:
        print(err, file=sys.stderr)
        sys.exit(2)
