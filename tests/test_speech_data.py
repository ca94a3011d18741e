"""Speech data: eSpeak NG synthesis, features (== librosa), noise, padding, the on-disk cache,
the WAV-folder loader and its errors, and the two speech tasks' data (shapes, padding,
targets, slices, held-out voices, determinism, a user's folder)."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
import torch

from memzoo import tasks
from memzoo.data import audio_features as af
from memzoo.data import audio_synth
from memzoo.data.audio_corpus import VOICES, Prosody, synthesized_corpus
from memzoo.data.audio_files import load_wav_folder
from memzoo.errors import ConfigError, MemzooError

pytest.importorskip("librosa", reason="speech needs the speech extra: pip install 'memzoo[speech]'")
if not audio_synth.available():
    pytest.skip("eSpeak NG is not installed (pip install 'memzoo[speech]')", allow_module_level=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("speech-cache")


def _write_wav(path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.clip(samples * 32767, -32768, 32767).astype("<i2")
    if channels > 1:
        data = np.repeat(data[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(data.tobytes())


# ---- synthesis --------------------------------------------------------------------------
def test_synthesis_is_deterministic_and_voices_differ():
    requests = [audio_synth.request("seven", voice) for voice in ("en-us+m3", "en-gb-scotland+f2")]
    first = audio_synth.synthesize_batch(requests)
    again = audio_synth.synthesize_batch(requests)
    for a, b in zip(first, again):
        assert a.dtype == np.float32 and np.array_equal(a, b)
        assert 0.2 < len(a) / audio_synth.SYNTH_RATE < 1.5 and 0.05 < np.abs(a).max() <= 1.0
    assert len(first[0]) != len(first[1]) or not np.allclose(first[0], first[1])
    slow = audio_synth.synthesize("seven", "en-us+m3", rate=100)
    fast = audio_synth.synthesize("seven", "en-us+m3", rate=300)
    assert len(slow) > 1.5 * len(fast)


def test_synthesis_rejects_unknown_voices_and_rates():
    with pytest.raises(MemzooError, match="no voice variant 'annie'"):  # the file is "Annie"
        audio_synth.synthesize("one", "en-us+annie")
    with pytest.raises(MemzooError, match="no voice 'xx-nowhere'"):
        audio_synth.synthesize("one", "xx-nowhere")
    with pytest.raises(MemzooError, match="80..450"):
        audio_synth.request("one", rate=20)


def test_a_missing_espeak_names_the_install(monkeypatch):
    import ctypes.util
    import sys

    monkeypatch.setitem(sys.modules, "espeakng_loader", None)  # the wheel is not installed
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)  # nor a system library
    assert not audio_synth.available()
    with pytest.raises(MemzooError, match=r"pip install 'memzoo\[speech\]'"):
        audio_synth.synthesize_batch([audio_synth.request("one")])


def test_voice_parts_share_no_variant():
    variants = {part: {v.split("+")[1] for v in voices} for part, voices in VOICES.items()}
    assert len(variants["train"]) == 77 and len(variants["validation"]) == 6 and len(variants["test"]) == 8
    assert not variants["train"] & variants["test"] and not variants["train"] & variants["validation"]
    assert not variants["validation"] & variants["test"]


# ---- features ---------------------------------------------------------------------------
def test_log_mel_and_mfcc_equal_librosa():
    import librosa

    wave_ = np.random.default_rng(0).standard_normal(9000).astype(np.float32) * 0.1
    hop, window, n_fft = af.frame_sizes(16000, 20)
    assert (hop, window, n_fft) == (320, 640, 1024)
    reference = librosa.feature.melspectrogram(
        y=wave_, sr=16000, n_fft=n_fft, hop_length=hop, win_length=window, n_mels=40, fmin=20, fmax=8000
    )
    mine = af.mel_filters(16000, n_fft, 40) @ af.power_spectrogram(wave_, n_fft, hop, window)
    np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-7 * reference.max())
    log_mel = np.log(reference + af.LOG_FLOOR)
    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=13)
    np.testing.assert_allclose(af.dct_matrix(40)[:13] @ log_mel, mfcc, rtol=1e-4, atol=1e-3)
    for kind, size in (("logmel", 40), ("mfcc", 13)):
        frames = af.features(wave_, 16000, kind, size, 20)
        assert frames.shape == (1 + 9000 // 320, size)
        np.testing.assert_allclose(frames.mean(0), 0, atol=1e-4)
        np.testing.assert_allclose(frames.std(0), 1, atol=1e-3)
    with pytest.raises(MemzooError, match="'logmel' or 'mfcc'"):
        af.features(wave_, 16000, "spectrogram")


def test_noise_trimming_and_padding():
    rng = np.random.default_rng(0)
    tone = np.sin(np.arange(16000) * 0.3).astype(np.float32)
    for snr in (0.0, 10.0, 30.0):
        noisy = af.add_noise(tone, snr, np.random.default_rng(1))
        measured = 10 * np.log10(np.mean(tone**2) / np.mean((noisy - tone) ** 2))
        assert abs(measured - snr) < 0.3
    padded = np.concatenate([np.zeros(1600, np.float32), tone[:3200], np.zeros(4800, np.float32)])
    assert len(af.trim_silence(padded, 16000)) == 3200
    assert len(af.trim_silence(np.zeros(100, np.float32), 16000)) == 0
    frames = [rng.standard_normal((n, 3)).astype(np.float32) for n in (5, 2)]
    left, right = af.pad_frames(frames, 6, "left"), af.pad_frames(frames, 6, "right")
    assert np.array_equal(left[1, 4:], frames[1]) and not left[1, :4].any()
    assert np.array_equal(right[1, :2], frames[1]) and not right[1, 2:].any()
    for padded_frames in (left, right):
        assert [len(af.trim_padding(x)) for x in padded_frames] == [5, 2]
    with pytest.raises(MemzooError, match="more than seq_len=4"):
        af.pad_frames(frames, 4, "left")


def test_cache_builds_once_per_parameters_and_rebuilds_damage(tmp_path):
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(3)}

    first = af.cached_arrays("t", {"a": 1}, build, tmp_path)
    second = af.cached_arrays("t", {"a": 1}, build, tmp_path)
    assert len(calls) == 1 and np.array_equal(first["x"], second["x"])
    af.cached_arrays("t", {"a": 2}, build, tmp_path)
    assert len(calls) == 2
    (stored,) = [p for p in (tmp_path / "speech").iterdir() if af.cache_key({"a": 1}) in p.name]
    stored.write_bytes(b"not an npz")
    assert np.array_equal(af.cached_arrays("t", {"a": 1}, build, tmp_path)["x"], np.arange(3))
    assert len(calls) == 3


def test_corpus_is_seeded_and_read_back_from_the_cache(cache, monkeypatch):
    items = [("one", VOICES["train"][0]), ("two", VOICES["test"][0])]
    corpus = synthesized_corpus(items, seed=5, cache_dir=cache, name="unit")
    assert [f.shape[1] for f in corpus.frames] == [40, 40] and corpus.texts == ["one", "two"]
    assert [corpus.voice_names[v] for v in corpus.voices] == [v for _, v in items]

    def no_synthesis(requests):
        raise AssertionError("the cached corpus was synthesised again")

    monkeypatch.setattr(audio_synth, "synthesize_batch", no_synthesis)
    again = synthesized_corpus(items, seed=5, cache_dir=cache, name="unit")
    assert all(np.array_equal(a, b) for a, b in zip(corpus.frames, again.frames))
    with pytest.raises(AssertionError, match="synthesised again"):
        synthesized_corpus(items, seed=6, cache_dir=cache, name="unit")
    with pytest.raises(MemzooError, match="low end above"):
        synthesized_corpus(items, seed=5, prosody=Prosody(rate=(200, 100)), cache_dir=cache)


# ---- a user's WAV folder ----------------------------------------------------------------
def test_wav_folder_loads_speakers_and_channels(tmp_path):
    tone = (0.5 * np.sin(np.arange(4000) * 0.2)).astype(np.float32)
    _write_wav(tmp_path / "alice" / "a.wav", tone)
    _write_wav(tmp_path / "b.wav", tone, channels=2)
    (tmp_path / "transcript.txt").write_text("# comment\n\nalice/a.wav  one\nb.wav go   left\n")
    recordings = load_wav_folder(tmp_path)
    assert [(r.name, r.text, r.speaker) for r in recordings] == [
        ("alice/a.wav", "one", "alice"),
        ("b.wav", "go left", ""),
    ]
    np.testing.assert_allclose(recordings[1].wave, tone, atol=1e-4)


def _transcript(folder: Path, text: str) -> None:
    (folder / "transcript.txt").write_text(text)


def _silence(folder: Path, name: str, rate: int = 16000, samples: int = 400) -> None:
    _write_wav(folder / name, np.zeros(samples, np.float32), rate=rate)


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: _silence(d, "a.wav"), "no transcript file 'transcript.txt'"),
        (lambda d: _transcript(d, "a.wav\n"), r"transcript.txt:1: no words"),
        (lambda d: _transcript(d, "a.wav one\na.wav two\n"), "already transcribed on line 1"),
        (lambda d: _transcript(d, "# nothing\n"), "has no lines"),
        (
            lambda d: (_silence(d, "a.wav"), _transcript(d, "a.wav one\nz.wav two\n")),
            "'z.wav' does not exist",
        ),
        (
            lambda d: (_silence(d, "a.wav"), _silence(d, "extra.wav"), _transcript(d, "a.wav one\n")),
            "no line for extra.wav",
        ),
        (
            lambda d: ((d / "bad.wav").write_bytes(b"RIFF junk"), _transcript(d, "bad.wav one\n")),
            "bad.wav: cannot read",
        ),
        (
            lambda d: (_silence(d, "hi.wav", rate=44100), _transcript(d, "hi.wav x\n")),
            "44100 Hz, expected 16000 Hz",
        ),
        (
            lambda d: (_silence(d, "empty.wav", samples=0), _transcript(d, "empty.wav x\n")),
            "holds no samples",
        ),
    ],
)
def test_wav_folder_errors_name_the_problem(tmp_path, setup, message):
    setup(tmp_path)
    with pytest.raises(MemzooError, match=message):
        load_wav_folder(tmp_path)


def test_wav_folder_must_exist(tmp_path):
    with pytest.raises(MemzooError, match="not a folder"):
        load_wav_folder(tmp_path / "missing")


# ---- the tasks' data --------------------------------------------------------------------
def test_speech_words_parts_padding_targets_and_slices(cache):
    task = tasks.build("speech_words", train_voices=3, repeats=1, held_out_repeats=1, cache_dir=str(cache))
    train, test = task.split(num_train=60, num_test=1000, seed=0)
    assert train.inputs.shape == (60, 64, 40) and test.inputs.shape == (16 * 8, 64, 40)
    assert task.input_dim == 40 and task.output_vocab_size == 16 and task.head == "classify"
    # Left padding: every utterance ends at the last frame.
    assert bool(train.inputs[:, -1].abs().sum(-1).gt(0).all())
    train_voices = {task.voice_names[v] for v in train.slices["voice"].tolist()}
    test_voices = {task.voice_names[v] for v in test.slices["voice"].tolist()}
    assert train_voices == set(VOICES["train"][:3]) and test_voices == set(VOICES["test"])
    assert torch.equal(test.slices["word"], test.targets)
    assert sorted(test.targets.tolist()) == sorted(list(range(16)) * 8)
    assert {task.voice_names[v] for v in task.validation().slices["voice"].tolist()} == set(
        VOICES["validation"]
    )
    same, _ = task.split(num_train=60, num_test=0, seed=0)
    other, _ = task.split(num_train=60, num_test=0, seed=1)
    assert torch.equal(same.inputs, train.inputs) and not torch.equal(other.targets, train.targets)
    assert torch.equal(task.split(5, 7, seed=3)[1].inputs, test.inputs[:7])  # the same test for every seed
    with pytest.raises(ConfigError, match="rate"):
        tasks.build("speech_words", rate=(200, 150))
    with pytest.raises(ConfigError, match="words"):
        tasks.build("speech_words", words=("yes", "yes"))


def test_speech_digits_ctc_targets_and_the_words_dtw_baseline(cache):
    task = tasks.build(
        "speech_digits", train_voices=4, num_train_utterances=12, held_out_utterances=6, cache_dir=str(cache)
    )
    train, test = task.split(num_train=12, num_test=6, seed=0)
    assert train.inputs.shape == (12, 192, 40) and train.targets.shape == (12, 192)
    assert task.head == "ctc" and task.output_vocab_size == 11 and task.blank == 10
    corpus = task.corpus("test")
    for n in range(6):
        labels = test.targets[n][test.targets[n] != -100].tolist()
        assert labels == task.digits(corpus.texts[n]) and 3 <= len(labels) <= 7
        assert int(test.slices["num_digits"][n]) == len(labels)
        assert bool(test.inputs[n, 0].abs().sum() > 0)  # right padding: speech starts at frame 0
    with pytest.raises(ConfigError, match="min_digits"):
        tasks.build("speech_digits", min_digits=5, max_digits=4)
    words = tasks.build("speech_words", train_voices=2, repeats=1, held_out_repeats=1, cache_dir=str(cache))
    word_train, word_test = words.split(64, 1000, seed=0)  # 16 words x 8 test voices
    baseline = words.baseline_metrics(word_train, word_test)
    assert baseline["majority_accuracy"] == pytest.approx(1 / 16) and 0.3 < baseline["dtw_accuracy"] <= 1


def test_tasks_read_a_users_folder(tmp_path, cache):
    texts = [
        ("one", "en-us+m1"),
        ("two", "en-us+m2"),
        ("one", "en+f1"),
        ("two", "en+m3"),
        ("one two", "en+m4"),
    ]
    waves = audio_synth.synthesize_batch([audio_synth.request(t, v) for t, v in texts])
    lines = []
    for n, ((text, voice), samples) in enumerate(zip(texts, waves)):
        name = f"{voice.split('+')[1]}/u{n}.wav"
        _write_wav(tmp_path / name, af.resample(samples, audio_synth.SYNTH_RATE, 16000))
        lines.append(f"{name} {text}")
    (tmp_path / "transcript.txt").write_text("\n".join(lines) + "\n")
    words = tasks.build("speech_words", path=str(tmp_path), cache_dir=str(cache), test_fraction=0.2)
    assert words.class_names == ["one", "one two", "two"] and words.voice_names == (
        "f1",
        "m1",
        "m2",
        "m3",
        "m4",
    )
    train, test = words.split(num_train=3, num_test=5, seed=0)
    assert len(test) == 1 and len(words.validation()) == 1 and train.inputs.shape[1:] == (64, 40)
    digits = tasks.build("speech_digits", path=str(tmp_path), cache_dir=str(cache))
    everything = [digits.corpus(p) for p in ("train", "validation", "test")]
    assert sorted(t for c in everything for t in c.texts) == sorted(t for t, _ in texts)
    (tmp_path / "transcript.txt").write_text(
        "\n".join([*lines[:-1], lines[-1].replace("one two", "one stop")])
    )
    with pytest.raises(MemzooError, match="'stop' is not a digit"):
        tasks.build("speech_digits", path=str(tmp_path), cache_dir=str(cache)).corpus("train")
    with pytest.raises(ConfigError, match="is not a folder"):
        tasks.build("speech_words", path=str(tmp_path / "nowhere"))
